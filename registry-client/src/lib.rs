//! OCI distribution client, content store and safe unpacker.
