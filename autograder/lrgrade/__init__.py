"""Build, release and grade the LR Schedules notebooks with nbgrader (`lrgrade --help`)."""
