"""`python -m prefect_synthdata.server`: the same as `synthdata serve`."""

import sys

from prefect_synthdata.server.run import main

sys.exit(main())
