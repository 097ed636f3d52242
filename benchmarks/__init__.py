"""Side-by-side throughput and memory of rindle_tus, @tus/server with
@tus/s3-store, and boto3's managed transfer, on one local S3."""
