"""The only package that imports boto3/botocore: sessions, account sources, collection."""
