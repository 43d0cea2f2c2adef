//! Identity and tenancy: who may do what, where.

pub mod authz;
pub mod email;
pub mod password;
pub mod permissions;
pub mod tokens;
