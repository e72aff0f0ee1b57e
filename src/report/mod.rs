//! Reporters render a finished run; they never decide anything.

pub mod console;
