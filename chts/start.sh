#!/bin/sh
''':'
# The archive's start, in POSIX sh (dash, busybox sh): runc calls the shim only passes on, and the
# marker, need no Python, so they do not start one. build.py fills in the names in at signs. Python reads
# these lines as a string (the line above opens it), so they hold no backslash and no three quotes
# in a row. Every variable is named chts_*: one the caller passed would be exported changed, so a
# caller's variable of one of the names chts_shim sets sends the call to Python (README: How it starts).

# Exec Python on this file: chts/boot.py, after these lines, starts the tool "$0" names.
# Python sets LC_CTYPE when the locale is C (PEP 538); chts_ctype tells it what to give back:
# empty when LC_CTYPE was unset, else = and its value.
chts_python() {
	chts_ctype=${LC_CTYPE+=$LC_CTYPE}
	export chts_ctype
	if [ -f @PYTHON@ ] && [ -x @PYTHON@ ]; then
		exec @PYTHON@ -ISc @PROGRAM@ "$0" "$@"
	fi
	chts_tried=@PYTHON@" (missing)"
	chts_ifs=$IFS
	IFS=:
	# Without PATH, or with an empty one (a runtime starting an NRI plugin gives none): the usual places.
	chts_search=${PATH:+$PATH:}
	chts_where="PATH=${PATH-}"
	if [ -z "$chts_search" ]; then
		chts_search=/usr/bin:/usr/local/bin:/bin
		chts_where="$chts_search (no PATH)"
	fi
	for chts_dir in $chts_search; do
		chts_p=${chts_dir:-.}/python3
		if [ -f "$chts_p" ] && [ -x "$chts_p" ]; then
			if "$chts_p" -ISc 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
				IFS=$chts_ifs
				exec "$chts_p" -ISc @PROGRAM@ "$0" "$@"
			fi
			chts_tried="$chts_tried, $chts_p (older than 3.8)"
		fi
	done
	echo "${0##*/}: no Python 3.8 or newer: tried $chts_tried, python3 in $chts_where" >&2
	exit 127
}

# Return 0 if Python would only pass runc's argv "$@" on, as chts.shim.main.parse_runc_argv reads it:
# no --debug among runc's global options, and a subcommand that injects no hooks.
chts_passes_on() {
	chts_debug=
	while [ $# -gt 0 ]; do
		case $1 in
		--) shift; break ;;
		-) break ;;
		--*) chts_flag=${1#--} ;;
		-*) chts_flag=${1#-} ;;
		*) break ;;
		esac
		case $chts_flag in
		debug) chts_debug=1 ;;
		debug=*)
			case ${chts_flag#debug=} in
			1 | t | T | true | TRUE | True) chts_debug=1 ;; # Go's strconv.ParseBool
			*) chts_debug= ;;
			esac
			;;
		@GLOBAL_VALUE_FLAGS@)
			shift # its value is the next word; without one runc fails, and Python passes it on too
			[ $# -gt 0 ] || break
			;;
		esac
		shift
	done
	[ -z "$chts_debug" ] || return 1
	case ${1-} in
	@INJECTING_COMMANDS@) return 1 ;;
	esac
}

# Set chts_runtime to the first of the candidates named on stdin (one a line) that is an
# executable file and not this file, looked up as chts.shim.main.find_runtime does.
chts_find_runtime() {
	while IFS= read -r chts_name; do
		case $chts_name in
		*/*)
			chts_runtime=$chts_name
			chts_usable && return 0
			continue
			;;
		esac
		IFS=:
		# Python leaves out a standard directory PATH has; searching it again later finds nothing new.
		for chts_dir in ${PATH:+$PATH:}$chts_standard; do
			chts_runtime=${chts_dir:-.}/$chts_name
			chts_usable && return 0
		done
		IFS=$chts_ifs
	done
	chts_runtime=
}

chts_usable() {
	[ -f "$chts_runtime" ] && [ -x "$chts_runtime" ] && ! [ "$chts_runtime" -ef "$0" ]
}

# The shim passes a call on itself when chts.shim.runtime_record's record says which runtimes the
# config names, and the record was made by this build for this config, unchanged since.
chts_shim() {
	chts_passes_on "$@" || return 0
	chts_ifs=$IFS
	chts_standard=@FALLBACK_PATH@
	chts_dir=${CONTAINER_HOOKS_CACHE_DIR:-@CACHE_DIR@}
	chts_record=$chts_dir/@RECORD_NAME@
	chts_config=${CONTAINER_HOOKS_CONFIG:-@CONFIG_PATH@}
	[ -O "$chts_dir" ] && [ -d "$chts_dir" ] && [ -O "$chts_record" ] && [ -f "$chts_record" ] &&
		! [ -h "$chts_record" ] || return 0
	chts_runtime=
	{
		IFS= read -r chts_line && [ "$chts_line" = @RECORD_HEADER@ ] &&
			IFS= read -r chts_line && [ "$chts_line" = "$chts_config" ] &&
			IFS= read -r chts_line &&
			case $chts_line in
			absent) ! [ -e "$chts_config" ] ;;
			present) [ -e "$chts_config" ] && ! [ "$chts_config" -nt "$chts_record" ] ;;
			*) false ;;
			esac &&
			chts_find_runtime
	} <"$chts_record"
	IFS=$chts_ifs
	[ -n "$chts_runtime" ] || return 0
	exec "$chts_runtime" "$@"
}

# Busybox sh exports PATH=/sbin:/usr/sbin:/bin:/usr/bin when the caller gave none: unset it unless
# the caller's environment as the kernel passed it, /proc/self/environ, has PATH, so that the
# runtime (and Python) get no PATH and the runtime is looked up in the standard directories only,
# as chts.shim.main.find_runtime does without one. read -d is busybox's; dash, which invents no PATH,
# has none (status 2).
chts_own_path() {
	while :; do
		IFS= read -r -d '' chts_entry
		case $? in
		0) case $chts_entry in PATH=*) return 0 ;; esac ;;
		1) unset PATH; return 0 ;;
		*) return 0 ;;
		esac
	done
} 2>/dev/null </proc/self/environ

set -f
case ${PATH-}${chts_entry+=} in
/sbin:/usr/sbin:/bin:/usr/bin) chts_own_path ;;
esac
case ${0##*/} in
@MARKER_NAME@)
	case ${1-} in
	--version | -v) echo "@MARKER_NAME@ @VERSION@" ;;
	esac
	exit 0
	;;
@SHIM_NAME@)
	case ${chts_ifs+1}${chts_standard+1}${chts_debug+1}${chts_flag+1}${chts_dir+1}${chts_record+1}${chts_config+1}${chts_runtime+1}${chts_line+1}${chts_name+1} in
	'') chts_shim "$@" ;;
	esac
	;;
esac
chts_python "$@"
'''
