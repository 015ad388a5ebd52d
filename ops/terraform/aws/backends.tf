# ElastiCache Redis and RDS PostgreSQL for cluster mode (enable_cluster_backends; README,
# "Cluster"): PostgreSQL holds the truth (accounts, sessions, the social graph, bans, rooms,
# messages, the canvas journal and snapshots, the control log); Redis carries the paint
# cooldowns, the announcements between nodes and the epoch. Every instance is a node: its
# config names the Redis endpoint, and its service reads the PostgreSQL password from Secrets
# Manager when it starts (user-data).
#
# TLS (backends_tls, on by default): Redis with transit encryption, the nodes on rediss://
# (ElastiCache's certificate chains to Amazon's public roots, in the system trust store that
# user-data installs); RDS forcing TLS, the nodes on sslmode=require with the RDS CA bundle
# (user-data downloads it: storage.postgres_ca_file). The server verifies the certificates
# and host names, and a node that cannot does not start. Either way both accept the server
# instances' security group only, inside the VPC.

locals {
  postgres_secret_arn = try(aws_db_instance.postgres[0].master_user_secret[0].secret_arn, "")
  # Whether the backends refuse unencrypted connections: with TLS, unless a move to or from
  # it is under way (backends_tls_accept_plaintext).
  backends_tls_only = var.backends_tls && !var.backends_tls_accept_plaintext
}

resource "aws_elasticache_subnet_group" "redis" {
  count      = var.enable_cluster_backends ? 1 : 0
  name       = "${var.name}-redis"
  subnet_ids = var.database_subnet_ids
  tags       = local.tags
}

resource "aws_elasticache_replication_group" "redis" {
  count = var.enable_cluster_backends ? 1 : 0

  replication_group_id       = "${var.name}-redis"
  description                = "pixelparty cluster mode: canvas log, fan-out, cooldowns"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = 1 + var.redis_replicas
  automatic_failover_enabled = var.redis_replicas > 0
  multi_az_enabled           = var.redis_replicas > 0
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.redis[0].name
  security_group_ids         = [aws_security_group.backends[0].id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = var.backends_tls
  # required: TLS only. preferred: both, while nodes move to TLS (or away from it: disabling
  # transit encryption also goes through preferred). Redis 7.0.5 and later change both in
  # place.
  transit_encryption_mode = var.backends_tls ? (local.backends_tls_only ? "required" : "preferred") : null
  # Cooldowns and the epoch live here: never evict them.
  parameter_group_name     = aws_elasticache_parameter_group.redis[0].name
  snapshot_retention_limit = 1
  # In the maintenance window, but during a move to or from TLS: the nodes that the same apply
  # brings up (their launch template depends on this group) must find the new mode in place.
  apply_immediately = var.backends_tls_accept_plaintext
  tags              = local.tags

  lifecycle {
    precondition {
      condition     = length(var.database_subnet_ids) >= 2
      error_message = "enable_cluster_backends needs database_subnet_ids in at least two availability zones."
    }
    precondition {
      condition     = var.backends_tls || !var.backends_tls_accept_plaintext
      error_message = "backends_tls_accept_plaintext is for a move to or from TLS: it needs backends_tls = true."
    }
  }
}

resource "aws_elasticache_parameter_group" "redis" {
  count  = var.enable_cluster_backends ? 1 : 0
  name   = "${var.name}-redis7"
  family = "redis7"
  tags   = local.tags

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_db_subnet_group" "postgres" {
  count      = var.enable_cluster_backends ? 1 : 0
  name       = "${var.name}-postgres"
  subnet_ids = var.database_subnet_ids
  tags       = local.tags
}

resource "aws_db_instance" "postgres" {
  count = var.enable_cluster_backends ? 1 : 0

  identifier                  = "${var.name}-postgres"
  engine                      = "postgres"
  engine_version              = var.postgres_version
  instance_class              = var.postgres_instance_class
  allocated_storage           = var.postgres_storage_gb
  max_allocated_storage       = var.postgres_storage_gb * 4
  storage_type                = "gp3"
  storage_encrypted           = true
  db_name                     = "pixelparty"
  username                    = "pixelparty"
  manage_master_user_password = true # in Secrets Manager, never in the Terraform state
  multi_az                    = var.postgres_multi_az
  db_subnet_group_name        = aws_db_subnet_group.postgres[0].name
  parameter_group_name        = aws_db_parameter_group.postgres[0].name
  vpc_security_group_ids      = [aws_security_group.backends[0].id]
  publicly_accessible         = false
  backup_retention_period     = min(var.backup_retention_days, 35)
  copy_tags_to_snapshot       = true
  deletion_protection         = var.deletion_protection
  skip_final_snapshot         = false
  final_snapshot_identifier   = "${var.name}-postgres-final"
  auto_minor_version_upgrade  = true
  tags                        = local.tags
}

# RDS for PostgreSQL 15 and later forces TLS by default (rds.force_ssl = 1); said here, so
# that backends_tls = false (or a move to or from TLS) can turn it off. A dynamic parameter:
# no reboot.
resource "aws_db_parameter_group" "postgres" {
  count = var.enable_cluster_backends ? 1 : 0

  name_prefix = "${var.name}-postgres${var.postgres_version}-"
  family      = "postgres${var.postgres_version}"
  description = "pixelparty: rds.force_ssl follows backends_tls"
  tags        = local.tags

  parameter {
    name  = "rds.force_ssl"
    value = local.backends_tls_only ? "1" : "0"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# RDS rotates the master password it manages every 7 days; a node reads it when its service
# starts, and its later connections fail after a rotation until it restarts. Rotate seldom
# (postgres_password_rotation_days) and restart the nodes after each rotation (RUNBOOK.md).
resource "aws_secretsmanager_secret_rotation" "postgres" {
  count = var.enable_cluster_backends ? 1 : 0

  secret_id = local.postgres_secret_arn

  rotation_rules {
    automatically_after_days = var.postgres_password_rotation_days
  }
}
