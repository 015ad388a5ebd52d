# ElastiCache Redis and RDS PostgreSQL for the server's cluster mode, which is being built:
# Redis will carry the ordered canvas log, room fan-out, global cooldowns and control events;
# PostgreSQL accounts, sessions, the social graph, bans, rooms, messages and the canvas
# journal. The single-node server of today does not use them: they are off by default
# (enable_cluster_backends), and when on, their addresses only reach the instance as
# /etc/pixelparty/cluster.env for the release that reads them.

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
  transit_encryption_enabled = true
  # The canvas log lives here in cluster mode: never evict it.
  parameter_group_name     = aws_elasticache_parameter_group.redis[0].name
  snapshot_retention_limit = 1
  apply_immediately        = false
  tags                     = local.tags

  lifecycle {
    precondition {
      condition     = length(var.database_subnet_ids) >= 2
      error_message = "enable_cluster_backends needs database_subnet_ids in at least two availability zones."
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
