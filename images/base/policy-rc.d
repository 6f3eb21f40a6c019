#!/bin/sh
# Debian's invoke-rc.d asks this script before it starts or stops a service.
# 101 means "action forbidden": no package may start its daemon while an
# image is built. Containers start their service through kolla_start.
exit 101
