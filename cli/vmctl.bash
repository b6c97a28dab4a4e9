# bash completion for vmctl(1). VM, network, image, volume, snapshot and member names come from the
# daemon itself (`vmctl list`, `vmctl image list`, `vmctl snapshot list VM` ...), using the same --socket/--url/--token-file/--cacert/--tls-pin as the command
# line being completed.

_vmctl_vms()
{
    # $1: the connection flags already on the command line
    NO_COLOR=1 vmctl "$@" list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

# Readline replaces only the text after the last "=" or ":" of the word (COMP_WORDBREAKS),
# while the replies are whole words: cut that part of cur off them.
_vmctl_trim_breaks()
{
    local pre=${cur%"${cur##*[=:]}"}
    [[ -n $pre && $COMP_WORDBREAKS == *[=:]* ]] && COMPREPLY=("${COMPREPLY[@]#"$pre"}")
}

_vmctl_networks()
{
    NO_COLOR=1 vmctl "$@" network list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

# $1: image or volume; then the connection flags.
_vmctl_stored()
{
    local kind=$1
    shift
    NO_COLOR=1 vmctl "$@" "$kind" list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

# `vmctl image ...` and `vmctl volume ...`: the subcommand, then the name it works on, its
# options and their values. $1 is image or volume, $2 the index of the word after it.
_vmctl_storage()
{
    local kind=$1 at=$2 sub="" i npos=0 subs opts=$common
    for ((i = at; i < cword; i++)); do
        case ${words[i]} in
        --socket | --url | --token-file | --cacert | --tls-pin | --output | -o | --format | \
        --pool | --path | --size | --image) ((i++)) ;;
        -*) ;;
        *) if [[ -z $sub ]]; then sub=${words[i]}; else ((npos++)); fi ;;
        esac
    done
    case $prev in
    --format) COMPREPLY=($(compgen -W "auto raw qcow2" -- "$cur")); return ;;
    --path) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --image) COMPREPLY=($(compgen -W "$(_vmctl_stored image "${conn[@]}")" -- "$cur")); return ;;
    --pool | --size) return ;;
    esac
    if [[ $kind == image ]]; then
        subs="list show import delete download"
    else
        subs="list show create resize delete"
    fi
    if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        return
    fi
    case $kind$sub in
    imageimport) opts+=" --format --pool --path" ;;
    volumecreate) opts+=" --size --image --pool --readonly" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    case $sub in
    show | delete | resize)
        ((npos == 0)) && COMPREPLY=($(compgen -W "$(_vmctl_stored "$kind" "${conn[@]}")" -- "$cur"))
        ;;
    import)
        # NAME is new; then the file to upload.
        ((npos == 1)) && COMPREPLY=($(compgen -f -- "$cur"))
        ;;
    download)
        # an image, then the file to write
        ((npos == 0)) && COMPREPLY=($(compgen -W "$(_vmctl_stored "$kind" "${conn[@]}")" -- "$cur"))
        ((npos == 1)) && COMPREPLY=($(compgen -f -- "$cur"))
        ;;
    esac
}

# $1: the VM; then the connection flags. Its snapshots' names.
_vmctl_snapshots()
{
    local vm=$1
    shift
    NO_COLOR=1 vmctl "$@" snapshot list "$vm" 2>/dev/null | awk 'NR > 1 { print $1 }'
}

# The positional words from index $1 up to the cursor (options and their values skipped),
# into the array pos.
_vmctl_positionals()
{
    local i
    pos=()
    for ((i = $1; i < cword; i++)); do
        case ${words[i]} in
        --socket | --url | --token-file | --cacert | --tls-pin | --output | -o | --disk | --ttl) ((i++)) ;;
        -*) ;;
        *) pos+=("${words[i]}") ;;
        esac
    done
}

# `vmctl snapshot ...`, `vmctl restore` and `vmctl clone`: $1 the command, $2 the index of the
# word after it; conn holds the connection flags.
_vmctl_snapshot()
{
    local cmd=$1 pos opts=$common
    _vmctl_positionals "$2"
    case $cmd in
    snapshot)
        if ((${#pos[@]} == 0)); then
            COMPREPLY=($(compgen -W "create list show delete" -- "$cur"))
            return
        fi
        [[ ${pos[0]} == create ]] && opts+=" --no-resume"
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        elif ((${#pos[@]} == 1)); then
            COMPREPLY=($(compgen -W "$(_vmctl_vms "${conn[@]}")" -- "$cur"))
        elif ((${#pos[@]} == 2)) && [[ ${pos[0]} == show || ${pos[0]} == delete ]]; then
            COMPREPLY=($(compgen -W "$(_vmctl_snapshots "${pos[1]}" "${conn[@]}")" -- "$cur"))
        fi
        ;;
    restore)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        elif ((${#pos[@]} == 0)); then
            COMPREPLY=($(compgen -W "$(_vmctl_vms "${conn[@]}")" -- "$cur"))
        elif ((${#pos[@]} == 1)); then
            COMPREPLY=($(compgen -W "$(_vmctl_snapshots "${pos[0]}" "${conn[@]}")" -- "$cur"))
        fi
        ;;
    clone)
        # VM/SNAPSHOT: the VM with a slash, then its snapshots; then the new name (free).
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$opts --disk --autostart" -- "$cur"))
        elif ((${#pos[@]} == 0)) && [[ $cur == */* ]]; then
            COMPREPLY=($(compgen -P "${cur%%/*}/" -W "$(_vmctl_snapshots "${cur%%/*}" "${conn[@]}")" -- "${cur#*/}"))
        elif ((${#pos[@]} == 0)); then
            compopt -o nospace 2>/dev/null
            COMPREPLY=($(compgen -S / -W "$(_vmctl_vms "${conn[@]}")" -- "$cur"))
        fi
        ;;
    esac
}

# `vmctl network ...`: the subcommand, then its network, its options and values.
# $1 is the index of the word after "network"; conn holds the connection flags.
_vmctl_network()
{
    local at=$1 sub="" sub2="" i npos=0
    local subs="list show create set delete leases forward"
    for ((i = at; i < cword; i++)); do
        case ${words[i]} in
        --socket | --url | --token-file | --cacert | --tls-pin | --output | -o | --cidr | \
        --dns-domain | --mtu | --protocol | --host-address) ((i++)) ;;
        -*) ;;
        *)
            if [[ -z $sub ]]; then
                sub=${words[i]}
            elif [[ $sub == forward && -z $sub2 ]]; then
                sub2=${words[i]}
            else
                ((npos++))
            fi
            ;;
        esac
    done
    case $prev in
    --protocol) COMPREPLY=($(compgen -W "tcp udp" -- "$cur")); return ;;
    --cidr | --dns-domain | --mtu | --host-address) return ;;
    esac
    if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        return
    fi
    if [[ $sub == forward && -z $sub2 ]]; then
        COMPREPLY=($(compgen -W "add list delete" -- "$cur"))
        return
    fi
    local opts=$common
    case $sub$sub2 in
    create) opts+=" --cidr --no-nat --no-dhcp --dns-domain --mtu" ;;
    forwardadd) opts+=" --protocol --host-address" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    if ((npos == 0)) && [[ $sub != list && $sub != create ]]; then
        COMPREPLY=($(compgen -W "$(_vmctl_networks "${conn[@]}")" -- "$cur"))
    elif [[ $sub == set ]]; then
        compopt -o nospace 2>/dev/null
        COMPREPLY=($(compgen -W "nat= dhcp= dns_domain= mtu=" -- "$cur"))
    elif [[ $sub$sub2 == forwardadd ]] && ((npos == 2)); then
        COMPREPLY=($(compgen -W "$(_vmctl_vms "${conn[@]}")" -- "$cur"))
    fi
}

# `vmctl migrate VM TARGET` and `vmctl migration VM`: $1 the command, $2 the index of the word
# after it. migrate's --token-file is the target's token, not a connection flag.
_vmctl_migrate()
{
    local cmd=$1 pos opts=$common i
    pos=()
    for ((i = $2; i < cword; i++)); do
        case ${words[i]} in
        --socket | --url | --token | --token-file | --cacert | --tls-pin | --output | -o | \
        --max-downtime | --timeout) ((i++)) ;;
        -*) ;;
        *) pos+=("${words[i]}") ;;
        esac
    done
    case $prev in
    --token-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --token | --max-downtime | --timeout) return ;;
    esac
    [[ $cmd == migrate ]] && opts+=" --token --max-downtime --timeout --insecure --no-wait"
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif ((${#pos[@]} == 0)); then
        COMPREPLY=($(compgen -W "$(_vmctl_vms "${conn[@]}")" -- "$cur"))
    elif [[ $cmd == migrate ]] && ((${#pos[@]} == 1)); then
        # The target: a daemon's socket (unix:/PATH) or its URL.
        compopt -o nospace 2>/dev/null
        if [[ $cur == unix:* ]]; then
            COMPREPLY=($(compgen -P unix: -f -- "${cur#unix:}"))
        else
            COMPREPLY=($(compgen -W "unix:/ http:// https://" -- "$cur"))
        fi
        _vmctl_trim_breaks
    fi
}

# The cluster's members, from `vmctl cluster list` (a summary line, then the table).
_vmctl_members()
{
    NO_COLOR=1 vmctl "$@" cluster list 2>/dev/null | awk 'NR > 2 { print $1 }'
}

# `vmctl cluster ...`: the subcommand, then remove's or evacuate's member, join-token's --ttl,
# evacuate's --wait. $1 is the
# index of the word after "cluster"; conn holds the connection flags.
_vmctl_cluster()
{
    local pos opts=$common
    _vmctl_positionals "$1"
    [[ $prev == --ttl ]] && return
    if ((${#pos[@]} == 0)); then
        COMPREPLY=($(compgen -W "list remove join-token evacuate" -- "$cur"))
        return
    fi
    [[ ${pos[0]} == join-token ]] && opts+=" --ttl"
    [[ ${pos[0]} == evacuate ]] && opts+=" --wait"
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ ${pos[0]} == remove || ${pos[0]} == evacuate ]] && ((${#pos[@]} == 1)); then
        COMPREPLY=($(compgen -W "$(_vmctl_members "${conn[@]}")" -- "$cur"))
    fi
}

_vmctl()
{
    local cur prev words cword
    # "=" and ":" stay inside words (--nic network=lab,ip=...); see _vmctl_trim_breaks.
    _init_completion -n =: 2>/dev/null || {
        if [[ -n ${COMP_LINE-} ]]; then
            # Without bash-completion: the words of the line up to the cursor, split at
            # blanks only (COMP_WORDS is split at "=" and ":" too).
            local line=${COMP_LINE:0:COMP_POINT}
            read -ra words <<<"$line"
            [[ $line == *[[:blank:]] || ${#words[@]} -eq 0 ]] && words+=("")
        else
            words=("${COMP_WORDS[@]}")
        fi
        cword=$((${#words[@]} - 1))
        ((cword > COMP_CWORD)) && [[ -z ${COMP_LINE-} ]] && cword=$COMP_CWORD
        cur=${words[cword]}
        prev=${words[cword - 1]}
    }
    local commands="host list create show set limits start stop shutdown reboot pause resume delete
                    console logs events stats wait network storage image volume snapshot restore
                    clone migrate migration cluster version"
    local common="--output --socket --url --token-file --cacert --tls-pin --help"
    local states="stopped starting running paused stopping crashed unknown"
    local limit_keys="bytes_per_s= ops_per_s= burst_bytes= burst_ops="
    local cmd="" cmd_at=0 i conn=()

    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --token-file | --token)
            # After migrate, the target's token: not this daemon's.
            [[ $cmd != migrate && ${words[i]} == --token-file ]] && conn+=("${words[i]}" "${words[i + 1]}")
            ((i++))
            ;;
        --socket | --url | --cacert | --tls-pin)
            conn+=("${words[i]}" "${words[i + 1]}")
            ((i++))
            ;;
        --output | -o) ((i++)) ;;
        -*) ;;
        *)
            [[ -z $cmd ]] && cmd=${words[i]} && cmd_at=$i
            ;;
        esac
    done

    case $prev in
    --output | -o)
        COMPREPLY=($(compgen -W "table json" -- "$cur"))
        return
        ;;
    esac
    if [[ $cmd == network ]]; then
        _vmctl_network $((cmd_at + 1))
        return
    fi
    if [[ $cmd == image || $cmd == volume ]]; then
        _vmctl_storage "$cmd" $((cmd_at + 1))
        return
    fi
    if [[ $cmd == cluster ]]; then
        _vmctl_cluster $((cmd_at + 1))
        return
    fi
    if [[ $cmd == migrate || $cmd == migration ]]; then
        _vmctl_migrate "$cmd" $((cmd_at + 1))
        return
    fi
    if [[ ($cmd == snapshot || $cmd == restore || $cmd == clone) && $prev != --disk ]]; then
        _vmctl_snapshot "$cmd" $((cmd_at + 1))
        return
    fi
    case $prev in
    --disk)
        # A file, or volume=NAME (names from the daemon), then ,ro and the I/O limits.
        if [[ $cur == *,* ]]; then
            compopt -o nospace 2>/dev/null
            COMPREPLY=($(compgen -P "${cur%,*}," -W "ro $limit_keys" -- "${cur##*,}"))
            _vmctl_trim_breaks
        elif [[ $cur == volume=* ]]; then
            compopt -o nospace 2>/dev/null
            COMPREPLY=($(compgen -P volume= -W "$(_vmctl_stored volume "${conn[@]}")" -- "${cur#volume=}"))
            _vmctl_trim_breaks
        else
            COMPREPLY=($(compgen -f -- "$cur") $(compgen -W "volume=" -- "$cur"))
            [[ ${#COMPREPLY[@]} == 1 && ${COMPREPLY[0]} == volume= ]] && compopt -o nospace 2>/dev/null
        fi
        return
        ;;
    --socket | --token-file | --cacert | --kernel | --initrd | --from-file)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    --state)
        COMPREPLY=($(compgen -W "$states" -- "$cur"))
        return
        ;;
    --mode)
        COMPREPLY=($(compgen -W "full pv" -- "$cur"))
        return
        ;;
    --boot)
        COMPREPLY=($(compgen -W "kernel disk" -- "$cur"))
        return
        ;;
    --ha)
        COMPREPLY=($(compgen -W "restart none" -- "$cur"))
        return
        ;;
    --member)
        COMPREPLY=($(compgen -W "$(_vmctl_members "${conn[@]}")" -- "$cur"))
        return
        ;;
    --nic)
        # network=NAME (names from the daemon), tap=NAME or bridge=NAME, then ,ip= and ,mac=.
        compopt -o nospace 2>/dev/null
        if [[ $cur == network=* && $cur != *,* ]]; then
            COMPREPLY=($(compgen -P network= -W "$(_vmctl_networks "${conn[@]}")" -- "${cur#network=}"))
        elif [[ $cur == *,* ]]; then
            COMPREPLY=($(compgen -P "${cur%,*}," -W "ip= mac= $limit_keys" -- "${cur##*,}"))
        else
            COMPREPLY=($(compgen -W "network= tap= bridge=" -- "$cur"))
        fi
        _vmctl_trim_breaks
        return
        ;;
    --url | --tls-pin | --cmdline | --vcpus | --memory | --timeout | --tail)
        return
        ;;
    esac

    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands $common" -- "$cur"))
        return
    fi

    local opts=$common
    case $cmd in
    list) opts+=" --state --limit" ;;
    create) opts+=" --kernel --initrd --cmdline --boot --mode --vcpus --memory --disk --nic --autostart --from-file --cpu-quota --cpu-weight --member --ha" ;;
    shutdown) opts+=" --timeout" ;;
    delete) opts+=" --force" ;;
    logs) opts+=" --tail --follow" ;;
    events) opts+=" --follow" ;;
    wait) opts+=" --state --timeout" ;;
    set) opts+=" --ha name= mode= boot= vcpus= memory= kernel= initrd= cmdline= autostart= disks= nics= cpu_quota_pct= cpu_weight= ha=" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    case $cmd in
    show | set | limits | start | stop | shutdown | reboot | pause | resume | delete | console | logs | stats | wait)
        # The first positional argument is the VM name.
        local npos=0
        for ((i = 1; i < cword; i++)); do
            case ${words[i]} in
            --socket | --url | --token-file | --cacert | --tls-pin | --output | -o | --state | --timeout | --tail) ((i++)) ;;
            -*) ;;
            *) ((npos++)) ;;
            esac
        done
        if ((npos == 1)); then
            COMPREPLY=($(compgen -W "$(_vmctl_vms "${conn[@]}")" -- "$cur"))
        elif [[ $cmd == limits && $npos == 2 ]]; then
            COMPREPLY=($(compgen -W "disk0 disk1 disk2 disk3 net0 net1 net2 net3" -- "$cur"))
        elif [[ $cmd == limits ]]; then
            compopt -o nospace 2>/dev/null
            COMPREPLY=($(compgen -W "$limit_keys" -- "$cur"))
        elif [[ $cmd == set ]]; then
            compopt -o nospace 2>/dev/null
            COMPREPLY=($(compgen -W "name= mode= boot= vcpus= memory= kernel= initrd= cmdline= autostart= disks= nics= cpu_quota_pct= cpu_weight=" -- "$cur"))
        fi
        ;;
    esac
}
complete -F _vmctl vmctl
