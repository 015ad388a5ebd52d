# pixelparty on AWS, after the founding design: an autoscaling group behind a network load
# balancer (TCP for HTTP/WebSocket, UDP for WebTransport/QUIC), an S3 bucket the server backs
# up into, and, in cluster mode, ElastiCache Redis and RDS PostgreSQL.
#
# One node (the default): the server keeps its data in an embedded store (fjall), so the
# group holds exactly one instance, in one availability zone, and its data directory is a
# separate EBS volume that each new instance of the group attaches at boot: replacing the
# instance keeps the canvas.
#
# Cluster mode (enable_cluster_backends): instance_count nodes, each named by its instance id,
# share Redis and PostgreSQL (README, "Cluster"); PostgreSQL holds the data, so the nodes have
# no data volume and may span availability zones. The load balancer needs no stickiness.

locals {
  tags = merge({ "app" = "pixelparty", "managed-by" = "terraform" }, var.tags)

  cluster = var.enable_cluster_backends
  # WebTransport: one node gets it through the load balancer's UDP listener. Nodes of a
  # cluster cannot (a ticket is redeemed at the node that issued it, and the load balancer
  # sends a client's QUIC anywhere), so each advertises its own public address, when it has
  # one, or serves none (clients use WebSocket).
  wt_enabled = !local.cluster || var.instance_public_ip

  http_port  = 8080
  wt_port    = 8443
  admin_port = 9091

  public_host = var.domain_name != "" ? var.domain_name : aws_lb.this.dns_name
  public_url  = "${var.certificate_arn != "" ? "https" : "http"}://${local.public_host}"
  ami_id      = var.ami_id != "" ? var.ami_id : one(data.aws_ami.debian[*].id)

  binary_bucket = regex("^s3://([^/]+)/(.+)$", var.binary_s3_uri)[0]
  binary_key    = regex("^s3://([^/]+)/(.+)$", var.binary_s3_uri)[1]

  # Backups (README, "Backups"), in the bucket under one prefix the instance role may use. One
  # node: the whole store, under <prefix>/store. Cluster mode: every node backs the canvas up
  # (PostgreSQL holds the rest, and RDS backs it up) into <prefix>/nodes/<its instance id>
  # (user-data appends the id): an autoscaling group cannot single one node out, and a prefix
  # per node keeps each node's retention off the others' backups.
  backup_prefix = "pixelparty"
  backup_target = "s3://${aws_s3_bucket.backups.bucket}/${local.backup_prefix}/${local.cluster ? "nodes" : "store"}"

  # Cluster mode: Redis over TLS (rediss://, verified against the system trust store) unless
  # backends_tls is off; PostgreSQL likewise (sslmode=require in the URL that the unit's
  # ExecStartPre writes), trusting the RDS CA bundle that user-data downloads here.
  redis_url        = local.cluster ? "${var.backends_tls ? "rediss" : "redis"}://${one(aws_elasticache_replication_group.redis[*].primary_endpoint_address)}:6379/0" : ""
  postgres_ca_file = local.cluster && var.backends_tls ? "/etc/pixelparty/rds-ca.pem" : ""

  # The server's configuration file (see the repository README for every key). In cluster
  # mode the node id and the PostgreSQL URL (it holds the password) are not in it: the unit
  # gets them from the environment (user-data).
  config = templatefile("${path.module}/templates/pixelparty.toml.tftpl", {
    http_port              = local.http_port
    admin_port             = local.admin_port
    wt_port                = local.wt_port
    allowed_origins        = jsonencode([local.public_url])
    cookie_secure          = var.certificate_arn != ""
    width                  = var.canvas.width
    height                 = var.canvas.height
    cooldown_ms            = var.canvas.cooldown_ms
    durability             = var.durability
    journal_retention_days = var.journal_retention_days
    wt_enabled             = local.wt_enabled
    wt_public_url          = local.cluster ? "" : "https://${local.public_host}:${local.wt_port}/wt"
    cluster                = local.cluster
    redis_url              = local.redis_url
    postgres_ca_file       = local.postgres_ca_file
    key_prefix             = var.cluster_key_prefix
    backup_target          = local.backup_target
    backup_interval_s      = var.backup_interval_s
    backup_retain          = var.backup_retain
    region                 = data.aws_region.current.name
    extra_config           = var.extra_config
  })
}

data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_vpc" "this" {
  id = var.vpc_id
}

data "aws_subnet" "instance" {
  id = var.instance_subnet_id
}

# The latest official Debian 12 image (the release binary is built against its glibc).
data "aws_ami" "debian" {
  count       = var.ami_id == "" ? 1 : 0
  most_recent = true
  owners      = ["136693071363"] # Debian

  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}
