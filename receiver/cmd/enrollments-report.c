/* whr enrollments: reports (stub). */
