pub mod backup; pub mod restore; pub mod ls;
