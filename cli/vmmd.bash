# bash completion for vmmd(8). The flags come from `vmmd <command> --help`,
# the same option table that parses them, so the two cannot disagree.

_vmmd()
{
    local cur prev cmd="" i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        serve | run | routes | version | help) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done

    # --storage-pool NAME=DIR: bash splits the word at "=" (COMP_WORDBREAKS); DIR follows it.
    if [[ $prev == "=" && ${COMP_WORDS[COMP_CWORD - 3]-} == --storage-pool ]]; then
        COMPREPLY=($(compgen -d -- "$cur"))
        return
    fi
    case $prev in
    --config-file | --state-dir | --socket | --token-file | --image-dir | --log-file | \
    --dashboard-dir | --tls-cert | --tls-key | --tls-client-ca | --kernel | --initrd | --disk | \
    --control | --console-log | --exit-file | --cgroup | --firmware)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    --log-level) COMPREPLY=($(compgen -W "error warn info debug" -- "$cur")); return ;;
    --mode) COMPREPLY=($(compgen -W "full pv" -- "$cur")); return ;;
    --on-reboot) COMPREPLY=($(compgen -W "restart exit" -- "$cur")); return ;;
    --default-network) COMPREPLY=($(compgen -W "auto none" -- "$cur")); return ;;
    --import-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --storage-pool) return ;; # NAME=DIR: a name of the operator's
    esac

    if [[ -z $cmd && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "serve run routes version help" -- "$cur"))
        return
    fi
    local flags
    flags=$("${COMP_WORDS[0]}" "${cmd:-serve}" --help 2>/dev/null | sed -n 's/^  \(--[a-z-]*\).*/\1/p')
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}
complete -F _vmmd vmmd
