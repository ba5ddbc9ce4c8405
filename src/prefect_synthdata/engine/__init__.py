"""The embedded synthetic-data engine: generators, rendering, annotation and a job service.

It knows nothing of Prefect or HTTP; the `local` provider and the reference server
both drive it through `JobService`.
"""
