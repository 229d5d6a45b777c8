"""python -m dendrisweep.edge_impulse parameters | requirements [--check] | package DIR"""
from dendrisweep.edge_impulse.packaging import main

raise SystemExit(main())
