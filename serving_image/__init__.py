"""The bundled serving image: Triton Inference Server, its model repository, engines, and the `serve` entrypoint.

Self-contained: imports nothing from infra/ or components/, and has its own pinned requirements (requirements.txt).
"""
