"""The command line: the Hydra wrapper (errors become one `error:` line and an exit status),
console output, the configs' resolvers and in-process composing. The only place that knows
about argv and exit codes; nothing below it imports it."""
