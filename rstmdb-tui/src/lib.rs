//! rstmdb-tui: the live terminal dashboard (`rstmdb dashboard`). Built in a later issue.
#![forbid(unsafe_code)]
