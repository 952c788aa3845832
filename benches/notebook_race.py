"""The notebook's method, in Python: the three ways its "Part 4: Concurrency" raced threads on
one counter, written for this book so that the contention benchmark (benches/contention.rs) can
run them beside the Rust race, once per cell of its grid, with the official Python client.

    python notebook_race.py URL INDEX STRATEGY THREADS ITERATIONS

STRATEGY is none, occ or server:

- none: GET the counter, index the value plus one, no condition;
- occ: the same GET, an index with if_seq_no and if_primary_term, and on ConflictError a new
  GET and another try, with no limit on the tries;
- server: a scripted _update with retry_on_conflict=10, and no retry in the client.

What the notebook's race had, this one has: a fresh index with the client's default settings,
a counter document at 0, one thread per client sharing one client, each doing its ITERATIONS
increments in a row; an exception other than a handled 409 ends its thread. The notebook ran 5
threads of 50 increments on localhost:9200; here THREADS, ITERATIONS, the host and the index
come from the benchmark. The race is timed from before the first thread starts to after the last one
ends: wall time (time.perf_counter) and this process's CPU time, all threads
(time.process_time).

Prints one JSON line: wall_s, cpu_s, the counter's final value, the increments expected, the
exceptions that ended threads (their type names), the client's and Python's versions.
"""

import json
import sys
import threading
import time

import elasticsearch

COUNTER_ID = '1'
STRATEGIES = ('none', 'occ', 'server')


# ANCHOR: no_occ
def add_one_unconditionally(client, index, increments):
    for _ in range(increments):
        seen = client.get(index=index, id=COUNTER_ID)
        # Written back blindly: if another thread wrote after our read, its increment is gone.
        client.index(index=index, id=COUNTER_ID,
                     body={'counter': seen['_source']['counter'] + 1})
# ANCHOR_END: no_occ


# ANCHOR: occ
def add_one_if_unchanged(client, index, increments):
    done = 0
    while done < increments:
        seen = client.get(index=index, id=COUNTER_ID)
        try:
            # Accepted only if the document still has the sequence number and primary term
            # this thread read; otherwise the server answers 409.
            client.index(index=index, id=COUNTER_ID,
                         body={'counter': seen['_source']['counter'] + 1},
                         if_seq_no=seen['_seq_no'],
                         if_primary_term=seen['_primary_term'])
        except elasticsearch.ConflictError:
            # Someone wrote in between: read again. No cap on the tries, as in the notebook;
            # each 409 means another thread's write landed, so the race's own increments
            # bound them. Any other error ends the thread.
            continue
        done += 1
# ANCHOR_END: occ


# ANCHOR: server
# Painless, sent as a bare string: the change, not the new value.
ADD_ONE = 'ctx._source.counter += 1'


def add_one_on_server(client, index, increments):
    for _ in range(increments):
        # The server reads, adds and writes, and on a conflict tries again, 10 times at most;
        # past that the 409 is raised here and ends the thread.
        client.update(index=index, id=COUNTER_ID, body={'script': ADD_ONE},
                      retry_on_conflict=10)
# ANCHOR_END: server


def arguments(argv):
    """URL, index, strategy, threads, iterations; or one line on stderr and exit status 1."""
    usage = 'usage: notebook_race.py URL INDEX none|occ|server THREADS ITERATIONS'
    if len(argv) != 6 or argv[3] not in STRATEGIES:
        sys.exit(usage)
    try:
        threads, iterations = int(argv[4]), int(argv[5])
    except ValueError:
        sys.exit(f'{usage} (THREADS and ITERATIONS are whole numbers)')
    if threads < 1 or iterations < 0:
        sys.exit(f'{usage} (at least one thread, no negative iterations)')
    return argv[1], argv[2], argv[3], threads, iterations


def main():
    url, index, strategy, threads, iterations = arguments(sys.argv)
    increment = {
        'none': add_one_unconditionally,
        'occ': add_one_if_unchanged,
        'server': add_one_on_server,
    }[strategy]
    client = elasticsearch.Elasticsearch(url)

    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(index=index)
    client.index(index=index, id=COUNTER_ID, body={'counter': 0}, refresh=True)

    # A thread ended by an exception (a 409 after the server's ten tries, say) leaves its
    # remaining increments unsent: they are not lost updates, so they are counted apart.
    ended_by = []
    threading.excepthook = lambda hook: ended_by.append(hook.exc_type.__name__)

    workers = [threading.Thread(target=increment, args=(client, index, iterations))
               for _ in range(threads)]
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start

    client.indices.refresh(index=index)
    final = client.get(index=index, id=COUNTER_ID)['_source']['counter']
    client.indices.delete(index=index)
    print(json.dumps({
        'wall_s': wall,
        'cpu_s': cpu,
        'final': final,
        'expected': threads * iterations,
        'thread_errors': ended_by,
        'client': elasticsearch.__versionstr__,
        'python': sys.version.split()[0],
    }))


if __name__ == '__main__':
    try:
        main()
    except Exception as error:  # a failure outside the threads: one line, not a traceback
        sys.exit(f'notebook_race.py: {type(error).__name__}: {error}'.replace('\n', ' '))
