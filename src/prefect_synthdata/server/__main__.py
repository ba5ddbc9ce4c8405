"""`python -m prefect_synthdata.server`: the same as `synthdata serve`."""

import sys

from prefect_synthdata.server.run import main

if __name__ == "__main__":
    sys.exit(main())
