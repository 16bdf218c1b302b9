# bash completion for kith: commands, options, and the groups and members
# the running node knows (asked with --json; nothing is asked when no node
# runs). Installed by `make install` into
# PREFIX/share/bash-completion/completions/kith.

_kith_json_values() { # KEY: the string values of KEY, one JSON object per line
  sed -n 's/.*"'"$1"'" *: *"\(\([^"\\]\|\\.\)*\)".*/\1/p'
}

_kith_home_args() { # the --home given on the line, to ask the same node
  local i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    if [[ ${COMP_WORDS[i]} == --home ]]; then
      printf '%s\n' --home "${COMP_WORDS[i + 1]}"
    elif [[ ${COMP_WORDS[i]} == --home=* ]]; then
      printf '%s\n' "${COMP_WORDS[i]}"
    fi
  done
}

_kith_groups() {
  local -a home
  mapfile -t home < <(_kith_home_args)
  kith "${home[@]}" --json group list 2>/dev/null | _kith_json_values name
}

_kith_members() { # GROUP
  local -a home
  mapfile -t home < <(_kith_home_args)
  kith "${home[@]}" --json group members "$1" 2>/dev/null |
    _kith_json_values name
}

_kith() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="init node id status peers doctor group invite join send log chat
    react edit delete kick ban unban mute unmute leave role topic friend"
  local -a words=()
  local i
  # The words that are not options (nor an option's value).
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
    --home | --passphrase-file | --uses | --ttl | --for | --reply-to | \
      --history | --invites | --port | --bind | --stun | --turn | --turn-file | \
      --name | \
      --addr | --timeout | -n) ((i++)) ;;
    -*) ;;
    *) words+=("${COMP_WORDS[i]}") ;;
    esac
  done
  case $prev in
  --home | --passphrase-file | --turn-file)
    COMPREPLY=($(compgen -f -- "$cur"))
    return
    ;;
  --history)
    COMPREPLY=($(compgen -W "shared joined" -- "$cur"))
    return
    ;;
  --invites)
    COMPREPLY=($(compgen -W "all admins" -- "$cur"))
    return
    ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "--home --json --help $(_kith_options "${words[0]}")" -- "$cur"))
    return
  fi
  local IFS=$'\n'
  case ${#words[@]} in
  0) COMPREPLY=($(IFS=' '; compgen -W "$commands" -- "$cur")) ;;
  1) _kith_second "${words[0]}" ;;
  *) _kith_later "${words[@]}" ;;
  esac
}

_kith_options() {
  case $1 in
  init) echo --name --passphrase-file ;;
  node) echo --port --bind --stun --turn --turn-file --relay --passphrase-file ;;
  id) echo --passphrase-file ;;
  group) echo --history --announce --invites ;;
  invite) echo --uses --ttl ;;
  join) echo --timeout ;;
  send) echo --reply-to --lines ;;
  log) echo -n --follow --unread ;;
  react) echo --remove ;;
  mute) echo --for ;;
  friend) echo --addr --name ;;
  esac
}

# The word after the command: a subcommand or a group.
_kith_second() {
  case $1 in
  group) COMPREPLY=($(IFS=' '; compgen -W "create list info members mode invites" -- "$cur")) ;;
  friend) COMPREPLY=($(IFS=' '; compgen -W "add list remove" -- "$cur")) ;;
  invite) COMPREPLY=($(compgen -W "$(printf 'list\nrevoke\n'; _kith_groups)" -- "$cur")) ;;
  send | log | chat | react | edit | delete | kick | ban | unban | mute | \
    unmute | leave | role | topic)
    COMPREPLY=($(compgen -W "$(_kith_groups)" -- "$cur"))
    ;;
  esac
}

# Later words: a group after a subcommand, a member after a group, a role.
_kith_later() {
  local cmd=$1 n=$#
  case $cmd in
  group)
    case $2 in
    info | members | mode | invites)
      if [ "$n" -eq 2 ]; then
        COMPREPLY=($(compgen -W "$(_kith_groups)" -- "$cur"))
      elif [ "$2" = mode ]; then
        COMPREPLY=($(IFS=' '; compgen -W "announce open" -- "$cur"))
      elif [ "$2" = invites ]; then
        COMPREPLY=($(IFS=' '; compgen -W "all admins" -- "$cur"))
      fi
      ;;
    esac
    ;;
  invite)
    [ "$n" -eq 2 ] && COMPREPLY=($(compgen -W "$(_kith_groups)" -- "$cur"))
    ;;
  kick | ban | unban | mute | unmute | role)
    if [ "$n" -eq 2 ]; then
      COMPREPLY=($(compgen -W "$(_kith_members "$2")" -- "$cur"))
    elif [ "$cmd" = role ] && [ "$n" -eq 3 ]; then
      COMPREPLY=($(IFS=' '; compgen -W "owner admin member" -- "$cur"))
    fi
    ;;
  esac
}

complete -F _kith kith
