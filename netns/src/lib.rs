//! Per-task network namespaces over netlink.
