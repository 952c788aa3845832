"""The notebook's race ("Part 4: Concurrency", cells 3, 4 and 10), as the contention benchmark
runs it beside the Rust race: benches/contention.rs starts this once per cell.

    python notebook_race.py URL INDEX STRATEGY THREADS ITERATIONS

STRATEGY is none, occ or server. Prints one JSON line: the race's wall time and the CPU time
this process spent on it (all threads), the counter's final value, and the client's version.

The three functions below are the notebook's own, unchanged but for this: the notebook defines
the server-side one under the name occ_increment a second time (cell 10 replaces cell 4's); here
it is occ_increment_server so that both exist. The set-up around them is the notebook's too
(delete and create the index, index counter=0, refresh; threads started and joined), with these
changes: the host and index come from the command line (the notebook's were localhost:9200 and
conc_demo), THREADS and ITERATIONS replace its num_threads = 5 and iters_per_thread = 50, and
the race is timed (time.perf_counter, time.process_time) from the first thread's start to the
last thread's join.
"""

import json
import sys
import threading
import time

import elasticsearch
from elasticsearch import Elasticsearch, exceptions

ES_HOST, INDEX, STRATEGY = sys.argv[1], sys.argv[2], sys.argv[3]
num_threads, iters_per_thread = int(sys.argv[4]), int(sys.argv[5])
DOC_ID = '1'
es = Elasticsearch(ES_HOST)


# Cell 3
# ANCHOR: no_occ
def read_modify_write_no_occ(iterations):
    for _ in range(iterations):
        doc = es.get(index=INDEX, id=DOC_ID)
        current = doc['_source']['counter']
        es.index(index=INDEX, id=DOC_ID, body={'counter': current + 1})
# ANCHOR_END: no_occ


# Cell 4
# ANCHOR: occ
def occ_increment(iterations):
    for _ in range(iterations):
        while True:
            doc = es.get(index=INDEX, id=DOC_ID)
            seq_no = doc['_seq_no']
            primary_term = doc['_primary_term']
            current = doc['_source']['counter']
            try:
                es.index(
                    index=INDEX,
                    id=DOC_ID,
                    body={'counter': current + 1},
                    if_seq_no=seq_no,
                    if_primary_term=primary_term
                )
                break
            except exceptions.ConflictError:
                continue
# ANCHOR_END: occ


# Cell 10 (named occ_increment there)
# ANCHOR: server
def occ_increment_server(iters):
    for _ in range(iters):
        es.update(
            index=INDEX,
            id=DOC_ID,
            body={"script": "ctx._source.counter += 1"},
            retry_on_conflict=10  # number of auto-retries if a conflict occurs
        )
# ANCHOR_END: server


target = {
    'none': read_modify_write_no_occ,
    'occ': occ_increment,
    'server': occ_increment_server,
}[STRATEGY]

# reset index and seed counter=0 (cell 3)
if es.indices.exists(index=INDEX):
    es.indices.delete(index=INDEX)
es.indices.create(index=INDEX)
es.index(index=INDEX, id=DOC_ID, body={'counter': 0})
es.indices.refresh(index=INDEX)

# A thread the notebook's code lets an exception out of (a 409 once retry_on_conflict=10 ran
# out, say) stops there, with its remaining increments undone; count those, rather than let
# them pass for lost updates.
thread_errors = []
threading.excepthook = lambda args: thread_errors.append(args.exc_type.__name__)

wall, cpu = time.perf_counter(), time.process_time()
threads = []
for _ in range(num_threads):
    t = threading.Thread(target=target, args=(iters_per_thread,))
    threads.append(t)
    t.start()
for t in threads:
    t.join()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

es.indices.refresh(index=INDEX)
final_doc = es.get(index=INDEX, id=DOC_ID)
es.indices.delete(index=INDEX)
print(json.dumps({
    'wall_s': wall,
    'cpu_s': cpu,
    'final': final_doc['_source']['counter'],
    'expected': num_threads * iters_per_thread,
    'thread_errors': thread_errors,
    'client': elasticsearch.__versionstr__,
    'python': sys.version.split()[0],
}))
