from stemlink.cli import main

raise SystemExit(main())
