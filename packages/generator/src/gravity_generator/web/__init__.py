"""The generator over HTTP: an OpenAI-compatible personalization API and a page comparing every method.

``app`` wires them on the service's GeneratorApp, ``openai_api`` is ``/v1/chat/completions`` and
``/v1/models``, ``compare`` keeps the page's descriptions, ``pages`` renders it.
"""
