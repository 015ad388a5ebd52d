# Network load balancer: TCP (or TLS with an ACM certificate) for HTTP and WebSocket, and, for
# one node, UDP for WebTransport. QUIC cannot be terminated here: UDP goes through to the
# server, which holds its own certificate (self-signed, rotated, hashes published in GET
# /canvas, or a configured one). Health checks ask the admin endpoint's /readyz (no token
# needed), which in cluster mode also fails while the node is out of touch with Redis.

resource "aws_lb" "this" {
  name                             = "${var.name}-nlb"
  load_balancer_type               = "network"
  internal                         = false
  subnets                          = var.public_subnet_ids
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection
  tags                             = local.tags
}

resource "aws_lb_target_group" "http" {
  name                 = "${var.name}-http"
  port                 = local.http_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  preserve_client_ip   = "true"
  deregistration_delay = 30
  # A replaced instance's sessions are closed after the delay; clients reconnect and resume.
  connection_termination = true
  tags                   = local.tags

  health_check {
    protocol            = "HTTP"
    port                = tostring(local.admin_port)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# One node only: a cluster's nodes advertise their own addresses for WebTransport (main.tf).
resource "aws_lb_target_group" "webtransport" {
  count = local.cluster ? 0 : 1

  name                 = "${var.name}-wt"
  port                 = local.wt_port
  protocol             = "UDP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = 30
  tags                 = local.tags

  health_check {
    protocol            = "HTTP"
    port                = tostring(local.admin_port)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "http" {
  count = var.certificate_arn == "" ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "TCP"
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.http.arn
  }
}

resource "aws_lb_listener" "https" {
  count = var.certificate_arn != "" ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "TLS"
  certificate_arn   = var.certificate_arn
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  tags              = local.tags

  lifecycle {
    precondition {
      condition     = var.domain_name != ""
      error_message = "certificate_arn needs domain_name (the name the certificate is for)."
    }
  }

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.http.arn
  }
}

resource "aws_lb_listener" "webtransport" {
  count = local.cluster ? 0 : 1

  load_balancer_arn = aws_lb.this.arn
  port              = local.wt_port
  protocol          = "UDP"
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.webtransport[0].arn
  }
}

# Both were single resources before cluster mode.
moved {
  from = aws_lb_target_group.webtransport
  to   = aws_lb_target_group.webtransport[0]
}

moved {
  from = aws_lb_listener.webtransport
  to   = aws_lb_listener.webtransport[0]
}
