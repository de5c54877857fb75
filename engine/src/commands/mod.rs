pub mod archive;
pub mod backup;
pub mod diff;
pub mod dump;
pub mod ls;
pub mod restore;
