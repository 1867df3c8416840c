"""S3-compatible buckets as sources and erasers: the client plumbing and error mapping
(``client``), the listing source (``source``), the eraser that deletes every version and
confirms none is left (``eraser``), and the bucket's Object Lock state and legal holds
(``objectlock``). boto3 is imported only when a configuration has an S3 source. Imports no
other adapter.
"""
