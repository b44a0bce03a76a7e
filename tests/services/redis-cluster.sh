#!/usr/bin/env bash
# A local Redis Cluster for the tests: three masters and three replicas on loopback.
#   redis-cluster.sh start DIR PORT   six nodes on PORT..PORT+5, data and pid files in DIR;
#                                     prints the URL list for REDIS_CLUSTER_URL
#   redis-cluster.sh node DIR PORT    starts (again) the node on PORT, e.g. after it was
#                                     killed: it rejoins the cluster, as a replica if its
#                                     master role was taken over meanwhile
#   redis-cluster.sh stop DIR         stops every node started in DIR
# Nodes keep nothing on disk that outlives DIR (stop returns once every node has exited, so
# DIR can be removed right after it); a node notices a dead peer after 2 s
# (cluster-node-timeout), and a replica takes over a stopped master within a few seconds
# however long ago it last heard from it (cluster-replica-validity-factor 0: test data).
set -euo pipefail
command=$1 dir=$2
node() {
  redis-server --port "$1" --bind 127.0.0.1 --daemonize yes \
    --cluster-enabled yes --cluster-config-file "$dir/nodes-$1.conf" \
    --cluster-node-timeout 2000 --cluster-replica-validity-factor 0 \
    --appendonly no --save '' \
    --dir "$dir" --pidfile "$dir/redis-$1.pid" --logfile "$dir/redis-$1.log"
}
case "$command" in
  node) node "$3" ;;
  start)
    port=$3
    mkdir -p "$dir"
    nodes=()
    for i in 0 1 2 3 4 5; do
      node $((port + i))
      nodes+=("127.0.0.1:$((port + i))")
    done
    for p in $(seq "$port" $((port + 5))); do
      for _ in $(seq 50); do redis-cli -p "$p" ping > /dev/null 2>&1 && break; sleep 0.1; done
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes > "$dir/create.log" 2>&1
    for _ in $(seq 100); do
      redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' && break
      sleep 0.1
    done
    redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' \
      || { echo "the cluster in $dir did not form"; cat "$dir/create.log"; exit 1; }
    # Every replica has synced with its master, so that one can take over at once.
    for _ in $(seq 200); do
      up=0
      for p in $(seq "$port" $((port + 5))); do
        redis-cli -p "$p" info replication | grep -q 'master_link_status:up' && up=$((up + 1))
      done
      [ "$up" -eq 3 ] && break
      sleep 0.1
    done
    [ "$up" -eq 3 ] || { echo "the replicas in $dir did not sync"; exit 1; }
    printf 'redis://%s\n' "${nodes[@]}" | paste -sd ','
    ;;
  stop)
    pids=()
    for pidfile in "$dir"/redis-*.pid; do
      [ -e "$pidfile" ] || continue
      pid=$(cat "$pidfile")
      if kill "$pid" 2> /dev/null; then pids+=("$pid"); fi
    done
    # A node writes its files on the way out: wait (at most 10 s each) until every one has
    # exited, so that DIR can be removed as soon as this returns.
    for pid in ${pids[@]+"${pids[@]}"}; do
      for _ in $(seq 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    done
    ;;
  *) echo "usage: $0 start DIR PORT | node DIR PORT | stop DIR"; exit 2 ;;
esac
