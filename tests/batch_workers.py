"""Work for the processes of tests/test_batch.py: importable by a spawned child."""

import tokenhub


def ask(client, prompt):
    """One request with a client this process got by pickle or by fork."""
    reply = client.chat.completions.create(model="deepseek-v4-flash", messages=[{"role": "user", "content": prompt}])
    return reply.choices[0].message.content


def run_shard(client, requests, index, count):
    """What a distributed engine's task does: its shard of a batch, as plain data."""
    return [(result.custom_id, result.error is None)
            for result in tokenhub.run_batch(requests, client=client, shard=(index, count))]
