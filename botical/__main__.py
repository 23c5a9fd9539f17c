from botical.cli import main

raise SystemExit(main())
