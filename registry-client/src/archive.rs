//! OCI image layouts and `docker save` archives (issue 8): placeholder.
