# bench/: placeholder
