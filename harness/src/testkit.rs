//! Boards with SD cards for tests: see the module docs once filled.
