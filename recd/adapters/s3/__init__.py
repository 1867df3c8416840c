"""S3-compatible buckets as sources and erasers: the client plumbing (``client``) and the source
and eraser (``source``). boto3 is imported only when a configuration has an S3 source.
Imports no other adapter.
"""
