# Security groups. The load balancer keeps client addresses (client IP preservation on
# instance targets), so the instance sees and filters real clients: IP bans and per-address
# limits in the server work as on a bare machine.

resource "aws_security_group" "server" {
  name_prefix = "${var.name}-server-"
  description = "pixelparty server: public HTTP/WebSocket and WebTransport, private admin endpoint"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-server" })

  lifecycle {
    create_before_destroy = true
  }
}

locals {
  # WebTransport's UDP port is open only where a node serves it (main.tf).
  wt_cidrs = local.wt_enabled ? var.allowed_cidrs : []
  # (port, protocol, cidr) for every public rule.
  public_rules = merge(
    { for c in var.allowed_cidrs : "http-${c}" => { port = local.http_port, protocol = "tcp", cidr = c } },
    { for c in local.wt_cidrs : "wt-${c}" => { port = local.wt_port, protocol = "udp", cidr = c } },
    # Health checks of the load balancer come from its private addresses in the VPC.
    { "health-http" = { port = local.http_port, protocol = "tcp", cidr = data.aws_vpc.this.cidr_block } },
    { "admin-vpc" = { port = local.admin_port, protocol = "tcp", cidr = data.aws_vpc.this.cidr_block } },
    { for c in var.admin_cidrs : "admin-${c}" => { port = local.admin_port, protocol = "tcp", cidr = c } },
  )
}

resource "aws_vpc_security_group_ingress_rule" "server" {
  for_each = local.public_rules

  security_group_id = aws_security_group.server.id
  description       = each.key
  ip_protocol       = each.value.protocol
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = strcontains(each.value.cidr, ":") ? null : each.value.cidr
  cidr_ipv6         = strcontains(each.value.cidr, ":") ? each.value.cidr : null
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "server_all" {
  security_group_id = aws_security_group.server.id
  description       = "packages, the binary, S3, SSM, and the cluster backends"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  tags              = local.tags
}

# Redis and PostgreSQL accept the server instances only.
resource "aws_security_group" "backends" {
  count = var.enable_cluster_backends ? 1 : 0

  name_prefix = "${var.name}-backends-"
  description = "pixelparty cluster backends (Redis, PostgreSQL): from the server instances only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-backends" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "redis" {
  count = var.enable_cluster_backends ? 1 : 0

  security_group_id            = aws_security_group.backends[0].id
  description                  = "Redis from the servers"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.server.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  count = var.enable_cluster_backends ? 1 : 0

  security_group_id            = aws_security_group.backends[0].id
  description                  = "PostgreSQL from the servers"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.server.id
  tags                         = local.tags
}
