output "url" {
  description = "Public URL of the web client and API (WebSocket at /ws)."
  value       = local.public_url
}

output "webtransport_url" {
  description = "WebTransport URL the server advertises to browsers (UDP through the load balancer). Null in cluster mode: each node advertises its own public address, or none."
  value       = local.cluster ? null : "https://${local.public_host}:${local.wt_port}/wt"
}

output "cluster_mode" {
  description = "Whether the instances are nodes of one cluster over Redis and PostgreSQL."
  value       = local.cluster
}

output "load_balancer_dns_name" {
  description = "DNS name of the network load balancer (point domain_name at it)."
  value       = aws_lb.this.dns_name
}

output "load_balancer_zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias record."
  value       = aws_lb.this.zone_id
}

output "autoscaling_group_name" {
  description = "Autoscaling group of the server instances."
  value       = aws_autoscaling_group.server.name
}

output "server_security_group_id" {
  description = "Security group of the server instances (for Prometheus or bastion rules)."
  value       = aws_security_group.server.id
}

output "data_volume_id" {
  description = "EBS volume holding the one node's data directory (null in cluster mode)."
  value       = one(aws_ebs_volume.data[*].id)
}

output "backups_bucket" {
  description = "S3 bucket of the server's backups."
  value       = aws_s3_bucket.backups.bucket
}

output "backup_target" {
  description = "Where the server backs up (backup.target): one node, the whole store there; cluster mode, each node's canvas under <this>/<its instance id>. pixelparty restore --from <it> --s3-region <region> --list."
  value       = local.backup_target
}

output "redis_endpoint" {
  description = "Redis primary endpoint the nodes use (cluster mode; null unless enable_cluster_backends)."
  value       = one(aws_elasticache_replication_group.redis[*].primary_endpoint_address)
}

output "postgres_endpoint" {
  description = "PostgreSQL endpoint (cluster mode; null unless enable_cluster_backends)."
  value       = one(aws_db_instance.postgres[*].endpoint)
}

output "postgres_master_secret_arn" {
  description = "Secrets Manager secret with the database master password (null unless enable_cluster_backends)."
  value       = try(aws_db_instance.postgres[0].master_user_secret[0].secret_arn, null)
}

output "server_config" {
  description = "The server configuration file written to /etc/pixelparty.toml (cluster mode: without the node id, the PostgreSQL URL and a node's WebTransport URL, which each node adds)."
  value       = local.config
}
