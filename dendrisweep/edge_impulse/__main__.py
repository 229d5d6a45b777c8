"""python -m dendrisweep.edge_impulse parameters [--check] | package DIR"""
from dendrisweep.edge_impulse.packaging import main

raise SystemExit(main())
