pub mod backup;
pub mod ls;
pub mod restore;
