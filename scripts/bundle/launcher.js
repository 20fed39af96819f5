#!/bin/sh
":" //; exec "$(dirname "$(readlink -f "$0")")/../node/bin/node" "$0" "$@"
// The bundle's launcher: runs dist/main.js with the node shipped beside it (node/bin/node). Both a shell
// script and a module: run as a command (/usr/local/bin/fieldgate links here) the shell line above starts the
// bundled node on this file; node skips the first line and reads the second as a string and a comment.
await import('../dist/main.js');
