//! Shared code of the fuzz targets (see `README.md`): the `session` target's
//! input format and the driver that plays it with its checks, and the
//! reference model the `path_resolution` target compares against, and the
//! plain-text sessions the seed corpus is made from.

pub mod checked_fs;
pub mod driver;
pub mod path_model;
pub mod replies;
pub mod scenario;
pub mod script;
