/* Spawning a command for the exec handler: stub. */
