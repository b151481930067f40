//! Configuration read from files and the command line, before (or beside) any connection.

pub mod users;
