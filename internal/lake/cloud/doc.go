// Package cloud links the gocloud.dev/blob drivers for object stores into a binary, so that lake.url
// may be s3://, gs:// or azblob://. It holds no code: import it for its side effect, once, from the
// command (package lake itself links only file:// and mem://, so that tests and tools that do not
// need the cloud SDKs do not compile them).
//
// Each driver takes its credentials the usual way of its cloud (environment, shared config files,
// instance or workload identity) and its options from the URL's query, for example
// s3://bucket/lake?region=eu-west-1 or, for MinIO, s3://bucket/lake?endpoint=http://minio:9000&use_path_style=true.
// Commits rely on conditional creates, which all three support natively: S3 If-None-Match: *, a GCS
// DoesNotExist precondition, Azure If-None-Match: *.
package cloud

import (
	_ "gocloud.dev/blob/azureblob" // azblob://
	_ "gocloud.dev/blob/gcsblob"   // gs://
	_ "gocloud.dev/blob/s3blob"    // s3://
)
