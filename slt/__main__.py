import sys

from slt._cli import main

sys.exit(main())
