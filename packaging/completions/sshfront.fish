# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sshfront_global_optspecs
    string join \n config= listen= data-dir= host-key= workers= crypto-threads= crypto-queue= crypto-policy= password-concurrency= kex= ciphers= macs= host-key-algorithms= compression= moduli= rekey-limit= no-kexguess2 login-grace-time= max-connections= max-per-source= max-startups= per-source-max-startups= per-source-penalties= per-source-penalty-exempt= per-source-netblock= log-level= log-format= stats-interval= heap-trim-interval= drain-timeout= max-buffer-memory= port-file= proxy-protocol proxy-from= proxy-timeout= reuse-port metrics-listen= drain-delay= authorized-keys= password-file= auth-methods= pubkey-accepted-algorithms= max-auth-tries= banner= permit-open= permit-listen= permit-open-path= permit-listen-path= max-sessions= max-channels= session-command= allow-exec subsystem= set-env= routes= record-dir= record-max-size= env-allow= keepalive-interval= keepalive-count-max= connect-timeout= h/help V/version
end

function __fish_sshfront_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sshfront_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sshfront_using_subcommand
    set -l cmd (__fish_sshfront_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sshfront -n "__fish_sshfront_needs_command" -l config -d 'TOML file with defaults for any flag: each key is a long flag name ("max-auth-tries = 3", arrays for repeatable flags, true/false for switches). Flags given here win. Re-read on SIGHUP' -r -F
complete -c sshfront -n "__fish_sshfront_needs_command" -l listen -d 'Address to listen on (repeatable). Port 0 picks a free port; see --port-file' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l data-dir -d 'Directory for generated host keys; created with mode 0700 if missing' -r -F
complete -c sshfront -n "__fish_sshfront_needs_command" -l host-key -d 'Host private key, OpenSSH format, mode 0600 (repeatable). Without it, ed25519, ecdsa-p256 and rsa-3072 keys are generated in the data dir on first start and reused afterwards' -r -F
complete -c sshfront -n "__fish_sshfront_needs_command" -l workers -d 'Worker threads running connections [default: number of cores]' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l crypto-threads -d 'Threads computing key exchanges and signatures [default: number of cores]' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l crypto-queue -d 'Bound on crypto jobs queued or running; past it handshakes wait briefly, then are refused with DISCONNECT 12' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l crypto-policy -d 'Default algorithm lists: modern (post-quantum kex, EtM MACs, ed25519/rsa-sha2 host keys; no ssh-audit findings) or compat (also NIST curves, classic DH, SHA-1 MACs). --kex, --ciphers, --macs, --host-key-algorithms and --compression apply on top' -r -f -a "modern\t'Post-quantum key exchange, no NIST curves, no SHA-1, EtM MACs: zero ssh-audit findings'
compat\t'Everything implemented except SHA-1 key exchange and ssh-rsa (OpenSSH\'s default offer)'"
complete -c sshfront -n "__fish_sshfront_needs_command" -l password-concurrency -d 'Crypto threads that may hash passwords at once, so key exchanges and publickey logins keep moving during a password spray [default: half of --crypto-threads, at least 1]' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l kex -d 'Key exchange methods, OpenSSH list syntax: "a,b" replaces the default list, "+a,b" appends, "-a,b" removes (wildcards * and ? allowed), "^a,b" puts them first' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l ciphers -d 'Ciphers, OpenSSH list syntax (see --kex)' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l macs -d 'MACs, OpenSSH list syntax (see --kex)' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l host-key-algorithms -d 'Host key signature algorithms, OpenSSH list syntax (see --kex)' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l compression -d 'Compression: none, zlib@openssh.com, zlib; OpenSSH list syntax (see --kex) [default: none,zlib@openssh.com]' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l moduli -d 'OpenSSH `moduli` file with the groups offered for diffie-hellman-group-exchange (safe primes of 2048–8192 bits) [default: the built-in RFC 3526 groups]' -r -F
complete -c sshfront -n "__fish_sshfront_needs_command" -l rekey-limit -d 'Rekey after BYTES (K/M/G suffixes) and optionally SECONDS, like OpenSSH\'s RekeyLimit; "default" keeps the per-cipher volume [default: per cipher, no time limit]' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l login-grace-time -d 'Seconds from accept until authentication must have succeeded (at least 1)' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l max-connections -d 'Open connections at most; at the bound new ones wait in the kernel backlog' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l max-per-source -d 'Open connections allowed per client address (IPv4 address, IPv6 /64; the PROXY header\'s with --proxy-protocol); past it new ones are closed before any SSH byte. 0 = no limit' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l max-startups -d 'Random early drop of unauthenticated connections, as OpenSSH\'s MaxStartups: from START of them on, new ones are dropped at accept with probability RATE% rising to 100% at FULL' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l per-source-max-startups -d 'Unauthenticated connections per source (IPv4 address, IPv6 /64); past it new ones are dropped at accept. 0 = no limit' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l per-source-penalties -d 'Per-source penalties in OpenSSH\'s PerSourcePenalties syntax, e.g. "authfail:5s noauth:1s grace-exceeded:10s max:10m min:15s max-sources4:65536 overflow:permissive", or "yes" (OpenSSH\'s defaults) or "no". A source whose penalty exceeds min is refused at accept. [default: no]' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l per-source-penalty-exempt -d 'Sources never penalised (CIDR or address); repeatable' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l per-source-netblock -d 'Prefix lengths penalties group sources by, IPv4[:IPv6] [default: 32:64]' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l log-level -d 'Log verbosity' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c sshfront -n "__fish_sshfront_needs_command" -l log-format -d 'Log line format on stderr: text, or json (one object per line: ts, level, worker, conn, peer, user, event, code, reason, bytes_in, bytes_out, duration_ms, kex, cipher, msg)' -r -f -a "text\t'One human-readable line per record'
json\t'One JSON object per line with stable field names (README, "Log events")'"
complete -c sshfront -n "__fish_sshfront_needs_command" -l stats-interval -d 'Seconds between one-line statistics summaries on stderr; 0 = off' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l heap-trim-interval -d 'Seconds between returns of freed heap memory to the OS (glibc malloc_trim, on its own thread), so RSS comes back down after load peaks; 0 = off' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l drain-timeout -d 'Seconds authenticated connections may run after SIGTERM/SIGINT before the process exits' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l max-buffer-memory -d 'Budget for all read/write buffers together (K/M/G suffixes); a connection that cannot get a buffer stops reading until one frees' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l port-file -d 'Write the actually bound addresses, one per line, to FILE once listening (useful with port 0)' -r -F
complete -c sshfront -n "__fish_sshfront_needs_command" -l proxy-from -d 'Address block allowed to send the PROXY header, e.g. 10.0.0.0/8 or 127.0.0.1 (repeatable; required with --proxy-protocol). Other peers are closed at once' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l proxy-timeout -d 'Seconds to wait for the PROXY header before closing the connection' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l metrics-listen -d 'Serve Prometheus metrics (/metrics), /healthz and /readyz over HTTP on ADDR' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l drain-delay -d 'Seconds between SIGTERM (when /readyz turns 503) and closing the listeners, so a load balancer\'s health check stops sending new clients before they would be refused' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l authorized-keys -d 'OpenSSH authorized_keys file per user; %u is the user name, %% a literal %. Read at each login. Without it, publickey authentication is not offered' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l password-file -d 'Password file, one user:hash line each (argon2id or bcrypt; see `sshfront passwd`). Re-read on SIGHUP. Without it, password and keyboard-interactive are not offered' -r -F
complete -c sshfront -n "__fish_sshfront_needs_command" -l auth-methods -d 'Accepted authentication method sequences, as OpenSSH\'s AuthenticationMethods: sequences separated by spaces, methods in one by commas ("publickey,password publickey") [default: publickey password keyboard-interactive]' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l pubkey-accepted-algorithms -d 'Signature algorithms accepted for publickey authentication, OpenSSH list syntax (see --kex), as sshd\'s PubkeyAcceptedAlgorithms; also announced as server-sig-algs [default: all but SHA-1 ssh-rsa]' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l max-auth-tries -d 'Failed authentication attempts per connection before it is disconnected' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l banner -d 'Text file sent to clients before authentication (USERAUTH_BANNER), at most 16 KiB' -r -F
complete -c sshfront -n "__fish_sshfront_needs_command" -l permit-open -d 'Allow direct-tcpip (ssh -W, -L, -J) to HOST:PORT (repeatable; * and ? wildcards in HOST, * as PORT; "any" allows all). Without it, no forwarding to backends' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l permit-listen -d 'Allow remote forwarding (ssh -R) listening on [HOST:]PORT (repeatable; * wildcards; port * also allows port 0). Without it, no listening' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l permit-open-path -d 'Allow direct-streamlocal (ssh -L PORT:/path.sock) to Unix sockets matching GLOB (repeatable; * and ? wildcards). Without it, no Unix-socket forwarding to backends' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l permit-listen-path -d 'Allow streamlocal-forward (ssh -R /path.sock:HOST:PORT) listening on Unix socket paths matching GLOB (repeatable). Sockets are created mode 0600 and removed on close' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l max-sessions -d 'Session channels (shell, exec, subsystem) open at once per connection, as sshd\'s MaxSessions; forwarded connections do not count' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l max-channels -d 'Channels of any kind (sessions and forwarded connections) open at once per connection' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l session-command -d 'Command run (through /bin/sh -c) for every exec, shell or subsystem request, with the client\'s request in SSH_ORIGINAL_COMMAND and SSH_USER, SSH_CLIENT set' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l subsystem -d 'A subsystem sessions may start (repeatable), as sshd\'s Subsystem: e.g. sftp=/usr/lib/openssh/sftp-server. COMMAND runs through /bin/sh -c like --session-command children. Other subsystem requests are refused' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l set-env -d 'Environment variable set for every command (repeatable), as sshd\'s SetEnv; wins over the client\'s `env` request for the same name' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l routes -d 'Session proxy routes (TOML): which users go to which upstream SSH servers. A routed user\'s sessions, forwards and sftp are carried there after login. Re-read on SIGHUP; a file that does not load keeps the routes in use. Without it, a [routes] table in the --config file is used' -r -F
complete -c sshfront -n "__fish_sshfront_needs_command" -l record-dir -d 'Record PTY sessions of local commands as asciicast v2 files in DIR (created with mode 0700), one file per session. Routes have their own record_dir' -r -F
complete -c sshfront -n "__fish_sshfront_needs_command" -l record-max-size -d 'Largest recording file (K, M, G suffixes); past it the recording stops with a marker' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l env-allow -d 'Environment variable names accepted from `env` requests, comma-separated, wildcards allowed; "" accepts none' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l keepalive-interval -d 'Seconds between server keepalives after login; 0 = none' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l keepalive-count-max -d 'Unanswered keepalives after which the connection is dropped' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l connect-timeout -d 'Seconds a backend connect (name lookup included) may take before the channel open fails' -r
complete -c sshfront -n "__fish_sshfront_needs_command" -l no-kexguess2 -d 'Do not list Dropbear\'s kexguess2@matt.ucc.asn.au: a client\'s guessed key exchange packet is then used only when both sides\' first choices agree (RFC 4253 §7). Never listed under --crypto-policy modern'
complete -c sshfront -n "__fish_sshfront_needs_command" -l proxy-protocol -d 'Every listener expects a PROXY protocol v1 or v2 header (HAProxy send-proxy[-v2], nginx proxy_protocol) before the SSH stream, and uses the client address it names'
complete -c sshfront -n "__fish_sshfront_needs_command" -l reuse-port -d 'Set SO_REUSEPORT on the listeners, so several sshfront processes can share one port (the kernel spreads connections over them)'
complete -c sshfront -n "__fish_sshfront_needs_command" -l allow-exec -d 'Run the client\'s requested command through /bin/sh -c as the server\'s own user (when no --session-command or key command= applies). Off by default'
complete -c sshfront -n "__fish_sshfront_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sshfront -n "__fish_sshfront_needs_command" -s V -l version -d 'Print version'
complete -c sshfront -n "__fish_sshfront_needs_command" -f -a "passwd" -d 'Add or replace USER\'s line in the password file with a fresh argon2id hash; the password is read from the terminal (not echoed) or, when stdin is not a terminal, from its first line'
complete -c sshfront -n "__fish_sshfront_needs_command" -f -a "check-config" -d 'Validate the configuration (--config FILE and the flags after it) without starting; print the effective configuration. Exit 0 when valid, 2 naming each error'
complete -c sshfront -n "__fish_sshfront_needs_command" -f -a "generate-docs" -d 'Write the man page (man/sshfront.8) and bash, zsh and fish completions (completions/) under DIR, generated from these definitions'
complete -c sshfront -n "__fish_sshfront_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c sshfront -n "__fish_sshfront_using_subcommand passwd" -l password-file -d 'The password file to edit (created with mode 0600) [default: the server\'s --password-file, else ./sshfront-data/passwords]' -r -F
complete -c sshfront -n "__fish_sshfront_using_subcommand passwd" -s h -l help -d 'Print help'
complete -c sshfront -n "__fish_sshfront_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c sshfront -n "__fish_sshfront_using_subcommand generate-docs" -s h -l help -d 'Print help'
complete -c sshfront -n "__fish_sshfront_using_subcommand help; and not __fish_seen_subcommand_from passwd check-config generate-docs help" -f -a "passwd" -d 'Add or replace USER\'s line in the password file with a fresh argon2id hash; the password is read from the terminal (not echoed) or, when stdin is not a terminal, from its first line'
complete -c sshfront -n "__fish_sshfront_using_subcommand help; and not __fish_seen_subcommand_from passwd check-config generate-docs help" -f -a "check-config" -d 'Validate the configuration (--config FILE and the flags after it) without starting; print the effective configuration. Exit 0 when valid, 2 naming each error'
complete -c sshfront -n "__fish_sshfront_using_subcommand help; and not __fish_seen_subcommand_from passwd check-config generate-docs help" -f -a "generate-docs" -d 'Write the man page (man/sshfront.8) and bash, zsh and fish completions (completions/) under DIR, generated from these definitions'
complete -c sshfront -n "__fish_sshfront_using_subcommand help; and not __fish_seen_subcommand_from passwd check-config generate-docs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
