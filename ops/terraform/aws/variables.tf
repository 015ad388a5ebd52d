variable "name" {
  description = "Prefix of every resource's name."
  type        = string
  default     = "pixelparty"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}$", var.name))
    error_message = "name: 2 to 23 characters, lower-case letters, digits and dashes, starting with a letter (it prefixes load balancer and cache names)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# --- network -----------------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC to deploy into."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the network load balancer (public, one per availability zone)."
  type        = list(string)
}

variable "instance_subnet_id" {
  description = "Subnet of the server instance. One node: one subnet, hence one availability zone: the data volume lives there and follows the instance across replacements. Cluster mode: the instances' subnet unless instance_subnet_ids is set."
  type        = string
}

variable "instance_subnet_ids" {
  description = "Cluster mode only (enable_cluster_backends): subnets of the instances, several availability zones allowed (nodes keep no data). Empty: instance_subnet_id."
  type        = list(string)
  default     = []
}

variable "instance_public_ip" {
  description = "Give the instances public addresses (needed in a public subnet without a NAT gateway, for package and binary downloads). In cluster mode it is also what lets WebTransport work: each node advertises its own public address (a client's ticket is redeemed at the node that issued it, which the load balancer cannot arrange); without it the nodes serve no WebTransport and clients use WebSocket."
  type        = bool
  default     = false
}

variable "database_subnet_ids" {
  description = "Private subnets (at least two availability zones) for ElastiCache and RDS. Only used with enable_cluster_backends."
  type        = list(string)
  default     = []
}

variable "allowed_cidrs" {
  description = "Client addresses allowed to reach the public ports (HTTP/WebSocket over TCP, WebTransport over UDP)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "admin_cidrs" {
  description = "Addresses allowed to reach the admin endpoint (port 9091: metrics, bans, rollback). The load balancer's health checks come from inside the VPC, which is always allowed."
  type        = list(string)
  default     = []
}

# --- server ------------------------------------------------------------------------------

variable "binary_s3_uri" {
  description = "s3:// URI of a release build of the pixelparty binary for x86_64 Linux (cargo build --release -p pixelparty-gateway --bin pixelparty, on Debian 12 or older glibc). The instance downloads it at boot."
  type        = string

  validation {
    condition     = can(regex("^s3://[^/]+/.+", var.binary_s3_uri))
    error_message = "binary_s3_uri must look like s3://bucket/path/pixelparty."
  }
}

variable "instance_type" {
  description = "EC2 instance type (x86_64). The server runs one shard per core."
  type        = string
  default     = "c7i.large"
}

variable "ami_id" {
  description = "AMI to boot; empty: the latest official Debian 12 (amd64) image."
  type        = string
  default     = ""
}

variable "instance_count" {
  description = "Instances in the autoscaling group. One node (the default): must be 1, its embedded store is on the data volume. Cluster mode (enable_cluster_backends): any number, every instance a node of one cluster over ElastiCache and RDS."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count >= 1 && floor(var.instance_count) == var.instance_count
    error_message = "instance_count must be a whole number, at least 1 (more than 1 needs enable_cluster_backends)."
  }
}

variable "data_volume_size_gb" {
  description = "One node only: size of the data volume (store, journal, snapshots, admin token). Cluster mode has no data volume: PostgreSQL holds the data."
  type        = number
  default     = 50
}

variable "data_volume_iops" {
  description = "One node only: provisioned IOPS of the gp3 data volume (fsync latency matters in durability = sync)."
  type        = number
  default     = 3000
}

variable "domain_name" {
  description = "Public host name pointing at the load balancer (your DNS). Empty: the load balancer's own DNS name. Used for WebSocket origins and the advertised WebTransport URL."
  type        = string
  default     = ""
}

variable "certificate_arn" {
  description = "ACM certificate for domain_name. Set: the load balancer terminates TLS on 443 and forwards to the server's HTTP port. Empty: plain TCP on 80."
  type        = string
  default     = ""
}

variable "admin_token_ssm_parameter" {
  description = "Name of an SSM SecureString parameter holding the admin token. Empty (one node only): the server generates one into <data>/admin.token on the data volume (read it over SSM Session Manager). Cluster mode needs it: every node and Prometheus share one token."
  type        = string
  default     = ""
}

variable "canvas" {
  description = "Canvas settings, fixed once the data volume has a store."
  type = object({
    width       = number
    height      = number
    cooldown_ms = number
  })
  default = {
    width       = 1000
    height      = 1000
    cooldown_ms = 300000
  }
}

variable "durability" {
  description = "Storage durability of the one node's embedded store: sync, interval:<ms> or none (cluster mode: PostgreSQL commits every acknowledged write)."
  type        = string
  default     = "sync"

  validation {
    condition     = can(regex("^(sync|none|interval:[0-9]+)$", var.durability))
    error_message = "durability must be sync, none or interval:<ms>."
  }
}

variable "journal_retention_days" {
  description = "Canvas history kept for the pixel inspector and rollback (0 = forever)."
  type        = number
  default     = 30
}

variable "extra_config" {
  description = "More TOML appended to the server's configuration (tables not already in it: [auth], [limits]...)."
  type        = string
  default     = ""
}

# --- backups -----------------------------------------------------------------------------

variable "backup_interval_s" {
  description = "Seconds between the server's scheduled backups to the S3 bucket (backup.interval_s; README, \"Backups\"). 0: on demand only (pixelparty admin backup). One node: the whole store; cluster mode: the canvas, by every node into a prefix of its own (ops/README.md, \"AWS\")."
  type        = number
  default     = 3600

  validation {
    condition     = var.backup_interval_s >= 0 && floor(var.backup_interval_s) == var.backup_interval_s
    error_message = "backup_interval_s must be a whole number of seconds, 0 or more."
  }
}

variable "backup_retain" {
  description = "Complete backups the server keeps in the bucket (backup.retain; per node in cluster mode): after each backup it removes the older ones. 48 hourly backups: two days."
  type        = number
  default     = 48

  validation {
    condition     = var.backup_retain >= 1 && floor(var.backup_retain) == var.backup_retain
    error_message = "backup_retain must be a whole number, at least 1."
  }
}

variable "backup_retention_days" {
  description = "Days kept: the daily EBS snapshots of the one node's data volume (that many snapshots), RDS's automated backups in cluster mode (up to 35), and, in cluster mode, the backups under the prefix of a node that is gone (a replaced instance; a live node's own retention, backup_retain, removes its older ones long before). The one node's S3 backups never expire: backup_retain decides."
  type        = number
  default     = 30
}

variable "snapshot_time" {
  description = "UTC time (HH:MM) of the daily EBS snapshot of the one node's data volume. Empty: none. (Cluster mode: RDS backs the data up, backup_retention_days.)"
  type        = string
  default     = "03:00"

  validation {
    condition     = var.snapshot_time == "" || can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.snapshot_time))
    error_message = "snapshot_time must be HH:MM (UTC) or empty."
  }
}

# --- cluster mode ---------------------------------------------------------------------------

variable "enable_cluster_backends" {
  description = "Cluster mode: create ElastiCache Redis and RDS PostgreSQL and run every instance as a node of one cluster over them (README, \"Cluster\": PostgreSQL holds accounts, rooms, messages and the canvas journal; Redis the cooldowns and the announcements between nodes). Allows instance_count > 1; no data volume. An existing one-node deployment's data must be migrated first (ops/README.md, \"AWS\")."
  type        = bool
  default     = false
}

variable "cluster_key_prefix" {
  description = "Prefix of the nodes' Redis keys and channels (cluster.key_prefix): clusters can share one Redis."
  type        = string
  default     = "pixelparty"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.:-]+$", var.cluster_key_prefix))
    error_message = "cluster_key_prefix: letters, digits and _ . : - (no braces)."
  }
}

variable "backends_tls" {
  description = "Encrypt the nodes' connections to Redis and PostgreSQL (the default): ElastiCache with transit encryption, the nodes on rediss:// (the certificate verified against the system trust store: it chains to Amazon's public roots); RDS forcing TLS (rds.force_ssl = 1), the nodes on sslmode=require with the RDS CA bundle (postgres_ca_bundle_url) as storage.postgres_ca_file. Certificates and host names are verified: a node that cannot verify them does not start. Off: plain connections inside the VPC (the backends accept the server instances' security group only), for special cases such as a proxy in between that does not speak TLS."
  type        = bool
  default     = true
}

variable "backends_tls_accept_plaintext" {
  description = "With backends_tls: the backends also accept unencrypted connections (ElastiCache transit_encryption_mode = preferred, applied at once rather than in the maintenance window; rds.force_ssl = 0) while the nodes use TLS. Only for one apply while a deployment made without TLS moves to it, or back (ElastiCache changes transit encryption only through the preferred mode), then off again (ops/README.md, \"AWS\")."
  type        = bool
  default     = false
}

variable "postgres_ca_bundle_url" {
  description = "Cluster mode with backends_tls: HTTPS URL of the RDS CA bundle (PEM) that user-data downloads to /etc/pixelparty/rds-ca.pem, the server's storage.postgres_ca_file. The global bundle holds every commercial region's CAs; a regional one is https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem (AWS GovCloud and China have their own)."
  type        = string
  default     = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

  validation {
    condition     = can(regex("^https://[^/]+/.+", var.postgres_ca_bundle_url))
    error_message = "postgres_ca_bundle_url must be an https:// URL."
  }
}

variable "postgres_password_rotation_days" {
  description = "Days between rotations of the RDS-managed master password (RDS would rotate it every 7 days). Each node reads it when its service starts: after a rotation, new database connections of running nodes fail until they are restarted (ops/RUNBOOK.md)."
  type        = number
  default     = 365

  validation {
    condition     = var.postgres_password_rotation_days >= 1 && var.postgres_password_rotation_days <= 1000
    error_message = "postgres_password_rotation_days must be 1 to 1000 (Secrets Manager's range)."
  }
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.medium"
}

variable "redis_replicas" {
  description = "Redis read replicas (0 or more; with one or more, automatic failover is on)."
  type        = number
  default     = 1
}

variable "postgres_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "postgres_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "postgres_storage_gb" {
  description = "Allocated storage of the database (it grows automatically up to four times this)."
  type        = number
  default     = 50
}

variable "postgres_multi_az" {
  description = "Run a standby in a second availability zone."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the database and the load balancer from deletion."
  type        = bool
  default     = true
}
