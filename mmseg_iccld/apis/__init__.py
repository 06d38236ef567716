"""What the command-line tools share: config loading, checkpoint reading, result files,
user errors, run settings and environments, reports and measurements."""
