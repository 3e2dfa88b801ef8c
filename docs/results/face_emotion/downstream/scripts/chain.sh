#!/bin/bash
while pgrep -f au5b.sh > /dev/null; do sleep 5; done
cd /work/runs && STAGES="0,1,2" ./au5b.sh >> au5b.log 2>&1
