# The autoscaling group (instances replaced when unhealthy). One node: one instance with its
# data directory on a separate EBS volume that survives the instance (user-data attaches and
# mounts it). Cluster mode: instance_count nodes without a data volume. Either way user-data
# installs the binary and the configuration and starts the systemd service.

# One node only. Turning cluster mode on for a deployment that has this volume stops at its
# prevent_destroy: migrate the data to PostgreSQL first, then `terraform state rm` the volume
# (it is kept; delete it yourself once you no longer need it). ops/README.md, "AWS".
resource "aws_ebs_volume" "data" {
  count = local.cluster ? 0 : 1

  availability_zone = data.aws_subnet.instance.availability_zone
  size              = var.data_volume_size_gb
  type              = "gp3"
  iops              = var.data_volume_iops
  encrypted         = true
  tags              = merge(local.tags, { Name = "${var.name}-data", "pixelparty-data" = var.name })

  lifecycle {
    prevent_destroy = true
  }
}

# The volume was a single resource before cluster mode.
moved {
  from = aws_ebs_volume.data
  to   = aws_ebs_volume.data[0]
}

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "server" {
  name_prefix        = "${var.name}-server-"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

# Session Manager instead of SSH (no port 22 anywhere).
resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.server.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "server" {
  statement {
    sid       = "ReadBinary"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${local.binary_bucket}/${local.binary_key}"]
  }

  # The server's backups, under their prefix only (main.tf, backup_target): write them
  # (multipart uploads, aborted on failure), read them (restore, and a backup's manifest),
  # delete the older ones (retention: in the versioned bucket a delete leaves a noncurrent
  # version, which the lifecycle keeps for a week; no s3:DeleteObjectVersion here) and list
  # them.
  statement {
    sid       = "Backups"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.backups.arn}/${local.backup_prefix}/*"]
  }

  statement {
    sid       = "ListBackups"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.backups.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.backup_prefix}/*"]
    }
  }

  statement {
    sid       = "BackupsBucketLocation"
    actions   = ["s3:GetBucketLocation"]
    resources = [aws_s3_bucket.backups.arn]
  }

  dynamic "statement" {
    for_each = aws_ebs_volume.data
    content {
      sid       = "AttachDataVolume"
      actions   = ["ec2:AttachVolume"]
      resources = [statement.value.arn, "arn:${data.aws_partition.current.partition}:ec2:*:*:instance/*"]
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/pixelparty-data"
        values   = [var.name]
      }
    }
  }

  dynamic "statement" {
    for_each = local.cluster ? [] : [1]
    content {
      sid       = "DescribeVolumes"
      actions   = ["ec2:DescribeVolumes"]
      resources = ["*"]
    }
  }

  # Cluster mode: the PostgreSQL password, read by each node when its service starts.
  dynamic "statement" {
    for_each = local.cluster ? [1] : []
    content {
      sid       = "PostgresPassword"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.postgres_secret_arn]
    }
  }

  dynamic "statement" {
    for_each = var.admin_token_ssm_parameter != "" ? [1] : []
    content {
      sid       = "AdminToken"
      actions   = ["ssm:GetParameter"]
      resources = ["arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:*:parameter/${trimprefix(var.admin_token_ssm_parameter, "/")}"]
    }
  }
}

resource "aws_iam_role_policy" "server" {
  name   = "pixelparty"
  role   = aws_iam_role.server.id
  policy = data.aws_iam_policy_document.server.json
}

resource "aws_iam_instance_profile" "server" {
  name_prefix = "${var.name}-server-"
  role        = aws_iam_role.server.name
  tags        = local.tags
}

resource "aws_launch_template" "server" {
  name_prefix            = "${var.name}-"
  image_id               = local.ami_id
  instance_type          = var.instance_type
  update_default_version = true
  tags                   = local.tags

  iam_instance_profile {
    arn = aws_iam_instance_profile.server.arn
  }

  network_interfaces {
    associate_public_ip_address = var.instance_public_ip
    security_groups             = [aws_security_group.server.id]
    delete_on_termination       = true
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = 16
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  # The instance tag lets the role attach the data volume to it (see AttachDataVolume).
  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-server", "pixelparty-data" = var.name })
  }

  user_data = base64encode(templatefile("${path.module}/templates/user-data.sh.tftpl", {
    region                    = data.aws_region.current.name
    cluster                   = local.cluster
    data_volume_id            = try(aws_ebs_volume.data[0].id, "")
    binary_s3_uri             = var.binary_s3_uri
    admin_token_ssm_parameter = var.admin_token_ssm_parameter
    config                    = local.config
    backups_bucket            = aws_s3_bucket.backups.bucket
    wt_port                   = local.wt_port
    wt_per_node               = local.cluster && local.wt_enabled
    postgres_secret_arn       = local.postgres_secret_arn
    postgres_host             = local.cluster ? one(aws_db_instance.postgres[*].address) : ""
    postgres_db               = local.cluster ? one(aws_db_instance.postgres[*].db_name) : ""
    postgres_sslmode          = var.backends_tls ? "require" : "disable"
    postgres_ca_file          = local.postgres_ca_file
    postgres_ca_bundle_url    = var.postgres_ca_bundle_url
  }))
}

resource "aws_autoscaling_group" "server" {
  name_prefix               = "${var.name}-"
  min_size                  = var.instance_count
  max_size                  = var.instance_count
  desired_capacity          = var.instance_count
  vpc_zone_identifier       = local.cluster && length(var.instance_subnet_ids) > 0 ? var.instance_subnet_ids : [var.instance_subnet_id]
  target_group_arns         = concat([aws_lb_target_group.http.arn], aws_lb_target_group.webtransport[*].arn)
  health_check_type         = "ELB"
  health_check_grace_period = 600 # first boot: packages, binary, journal replay

  launch_template {
    id      = aws_launch_template.server.id
    version = aws_launch_template.server.latest_version
  }

  # One node: the data volume attaches to one instance at a time, so the old instance goes
  # before the new one comes (a short outage on every replacement). Cluster mode: new nodes
  # come up before old ones go, the others serving meanwhile.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = local.cluster ? 100 : 0
      max_healthy_percentage = local.cluster ? 200 : 100
    }
  }

  lifecycle {
    precondition {
      condition     = var.instance_count == 1 || local.cluster
      error_message = "instance_count > 1 needs enable_cluster_backends (cluster mode): without it each instance would be a separate canvas."
    }
    precondition {
      condition     = !local.cluster || var.admin_token_ssm_parameter != ""
      error_message = "cluster mode needs admin_token_ssm_parameter: every node (and Prometheus) must share one admin token."
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-server" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }
}

# One node: daily crash-consistent snapshots of the data volume (the store recovers from them
# as from a crash: a process crash loses nothing acknowledged), a second line beside the
# server's own backups to the S3 bucket (backups.tf). Cluster mode: RDS's automated backups
# (backends.tf) beside the nodes' canvas backups.
data "aws_iam_policy_document" "assume_dlm" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["dlm.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "dlm" {
  count              = var.snapshot_time != "" && !local.cluster ? 1 : 0
  name_prefix        = "${var.name}-dlm-"
  assume_role_policy = data.aws_iam_policy_document.assume_dlm.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "dlm" {
  count      = var.snapshot_time != "" && !local.cluster ? 1 : 0
  role       = aws_iam_role.dlm[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
}

resource "aws_dlm_lifecycle_policy" "data" {
  count              = var.snapshot_time != "" && !local.cluster ? 1 : 0
  description        = "${var.name} data volume snapshots"
  execution_role_arn = aws_iam_role.dlm[0].arn
  state              = "ENABLED"
  tags               = local.tags

  policy_details {
    resource_types = ["VOLUME"]
    target_tags    = { "pixelparty-data" = var.name }

    schedule {
      name      = "daily"
      copy_tags = true

      create_rule {
        interval      = 24
        interval_unit = "HOURS"
        times         = [var.snapshot_time]
      }

      retain_rule {
        count = var.backup_retention_days
      }
    }
  }
}
