#!/bin/sh
# sculpt's postinstall: tell systemd about the unit, enable and start nothing.
# sculpt in apply mode rearranges the machine: that is the administrator's
# decision (`systemctl enable --now sculpt`, docs/install.md).
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
exit 0
