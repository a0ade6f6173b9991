"""JSON output: response_format json_object, and json_schema with a schema.

    python3 examples/json_mode.py

json_object asks for any valid JSON object (mention JSON in the prompt);
json_schema asks for an object that satisfies your schema.
"""

import json

from _connect import connect

MODEL = "glm-5"

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "born": {"type": "integer"},
        "fields": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "born", "fields"],
}

with connect() as (client, _):
    reply = client.chat.completions.create(
        model=MODEL, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Describe Ada Lovelace as a JSON object."}])
    print("json_object:", json.loads(reply.choices[0].message.content))

    reply = client.chat.completions.create(
        model=MODEL,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}},
        messages=[{"role": "user", "content": "Describe Ada Lovelace."}])
    person = json.loads(reply.choices[0].message.content)
    missing = [key for key in SCHEMA["required"] if key not in person]
    print("json_schema:", person, "(missing: %s)" % (", ".join(missing) or "none"))
