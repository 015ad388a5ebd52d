# Backups bucket: private, encrypted, versioned, TLS only. The server backs up into it
# (config [backup], main.tf's backup_target: every backup_interval_s, and on demand with
# `pixelparty admin backup`) and removes its older backups itself (backup_retain), with the
# instance role, which may use the backup prefix only (compute.tf).

resource "aws_s3_bucket" "backups" {
  bucket_prefix = "${var.name}-backups-"
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "backups" {
  bucket                  = aws_s3_bucket.backups.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "backups" {
  bucket = aws_s3_bucket.backups.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backups" {
  bucket = aws_s3_bucket.backups.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "backups" {
  bucket = aws_s3_bucket.backups.id
  versioning_configuration {
    status = "Enabled"
  }
}

# The lifecycle never expires a live backup: which backups stay is the server's retention
# (backup_retain). It only cleans up after it: what retention deleted (a noncurrent version in
# this versioned bucket) goes a week later, with the delete markers left alone, and uploads
# that never completed go after two days. Cluster mode adds one expiry: under the nodes'
# prefix, objects older than backup_retention_days, which are the backups of nodes that are
# gone (each replaced instance leaves its prefix behind); a live node's retention removes its
# own well before that (the precondition below), unless its backups have been failing for
# that long, and every other node holds the same canvas.
resource "aws_s3_bucket_lifecycle_configuration" "backups" {
  bucket     = aws_s3_bucket.backups.id
  depends_on = [aws_s3_bucket_versioning.backups]

  rule {
    id     = "after-retention"
    status = "Enabled"
    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }

  dynamic "rule" {
    for_each = local.cluster ? [1] : []
    content {
      id     = "departed-nodes"
      status = "Enabled"
      filter {
        prefix = "${local.backup_prefix}/nodes/"
      }

      expiration {
        days = var.backup_retention_days
      }
    }
  }

  lifecycle {
    precondition {
      condition     = !local.cluster || var.backup_interval_s == 0 || var.backup_retain * var.backup_interval_s < var.backup_retention_days * 86400
      error_message = "cluster mode: backup_retain x backup_interval_s must be shorter than backup_retention_days, after which the bucket expires the nodes' backups (it would remove backups a node's retention keeps)."
    }
  }
}

data "aws_iam_policy_document" "backups_tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.backups.arn,
      "${aws_s3_bucket.backups.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "backups" {
  bucket     = aws_s3_bucket.backups.id
  policy     = data.aws_iam_policy_document.backups_tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.backups]
}
